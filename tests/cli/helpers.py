"""What the CLI tests share: run the command as a user would, and a platform file for an emulator.

``cli()`` runs ``python -m polysync_azure_openai.cli`` in a subprocess with the test's environment;
``--json`` output is parsed and exit codes asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import attrs

from polysync_azure_openai.emulator import Emulator

SECRET_ENV = "TEST_AOAI_SECRET"


@attrs.frozen
class Done:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def assert_no_secret(self, *secrets: str) -> None:
        for secret in secrets:
            assert secret not in self.stdout and secret not in self.stderr


def command_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment (its REQUESTS_CA_BUNDLE trusts the session CA) plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_AOAI_", "POLYSYNC_"))}
    return {**base, **(extra or {})}


#: The command under a file size limit: a write past it fails as on a full disk (Python ignores SIGXFSZ).
LIMITED = """
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv.pop(1)), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.argv[0] = "polysync-azure-openai"
runpy.run_module("polysync_azure_openai.cli", run_name="__main__", alter_sys=True)
"""


def cli(*args: str, env: dict[str, str] | None = None, max_file_bytes: int | None = None) -> Done:
    """Run the command as a user would; ``max_file_bytes`` limits the size of every file it writes."""
    command = ["-m", "polysync_azure_openai.cli"] if max_file_bytes is None else ["-c", LIMITED, str(max_file_bytes)]
    done = subprocess.run(
        [sys.executable, *command, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=command_env(env),
    )
    return Done(done.returncode, done.stdout, done.stderr)


def platform_file(tmp_path: Path, emu: Emulator, auth_method: str = "Service Principal", **attributes: Any) -> Path:
    """A platform TOML for the emulator; a dict value is written as an inline table ({ env = ... })."""
    values: dict[str, Any] = {
        "OpenAI Resource Name": emu.resource_name,
        "OpenAI Endpoint": emu.url,
        "Subscription Id": emu.subscription_id,
        "Resource Group Name": emu.resource_group,
        "Resource Manager Endpoint": emu.url,
        "Max Retries": "0",
    }
    if auth_method == "Service Principal":
        values |= {"Authority Host": emu.url, "Tenant Id": emu.tenant_id, "Client Id": emu.client_id}
        values["Client Secret"] = {"env": SECRET_ENV}
    else:
        values["API Key"] = {"env": SECRET_ENV}
    values |= {k.replace("_", " "): v for k, v in attributes.items()}
    lines = [f'name = "test platform"\nauth_method = "{auth_method}"\n\n[attributes]']
    for name, value in values.items():
        if isinstance(value, dict):
            lines.append(f'"{name}" = {{ env = "{value["env"]}" }}')
        elif value is not None:
            lines.append(f"{json.dumps(name)} = {json.dumps(value)}")
    path = tmp_path / f"platform-{uuid.uuid4().hex[:8]}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
