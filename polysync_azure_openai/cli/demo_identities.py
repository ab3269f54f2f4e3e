"""The demo's keyless runs: a workload identity and a managed identity, without a cloud.

Workload Identity runs here: its token file is an attribute. Managed Identity is found through
the process environment (``IDENTITY_ENDPOINT``, ``IDENTITY_HEADER``), which the CLI never
changes, so it runs in a child process started with the emulator's values, as App Service starts
a worker with its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..jobs import CHAT

if TYPE_CHECKING:
    import pluggy

    from ..emulator import Emulator

#: A child process imports the plugin and azure-identity; generous on a loaded machine.
CHILD_TIMEOUT_SECONDS = 120.0


def demo_identities(emu: Emulator, pm: pluggy.PluginManager, scratch: Path, expect: Any) -> None:
    """Run one chat as each keyless identity; ``expect(result, status, what)`` checks each run."""
    from ..emulator.cli import keyless_platform_toml, platform_attributes
    from .host import Job, Platform

    print("\n== Workload Identity run (a Kubernetes service account token, no secret)")
    token_file = emu.write_federated_token(scratch / "azure-identity-token")
    attributes = {**platform_attributes(emu), "Client Id": emu.workload_client_id, "Token File Path": str(token_file)}
    platform = Platform(
        name="Azure OpenAI (workload identity)", auth_method="Workload Identity", attributes=attributes, ca_bundle=emu.ca_path
    )
    job = Job(job_type=CHAT, external_id="gpt-4o", name="gpt-4o", attributes={"OpenAI Max Tokens": "32"})
    result = pm.hook.submit(platform=platform, job=job, parameters={"user_prompt": "Name a prime number."}, run_key="demo-wi")
    expect(result, "Success", "workload identity chat")
    print(f"token file   {token_file} (issuer {emu.oidc_issuer})")
    print(f"answer       {result.outputs['response']}")
    print(f"identity     {_caller(emu)} (the app trusting system:serviceaccount:polysync:polysync-worker)")

    print("\n== Managed Identity run (a worker App Service started with IDENTITY_ENDPOINT)")
    config = scratch / "managed-identity.toml"
    config.write_text(keyless_platform_toml(emu, "Managed Identity"), encoding="utf-8")
    env = {**os.environ, **emu.managed_identity_environment(), "REQUESTS_CA_BUNDLE": emu.ca_path}
    command = [sys.executable, "-m", "polysync_azure_openai.cli", "run", "chat", "gpt-4o", "--config", str(config)]
    command += ["--param", "user_prompt=Name a prime number.", "--attr", "OpenAI Max Tokens=32", "--json"]
    # Our own interpreter and module, arguments fixed here: nothing comes from outside.
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_SECONDS, check=False)  # noqa: S603
    try:
        child = json.loads(done.stdout)
    except ValueError:
        child = {"status": f"no answer (exit {done.returncode})", "message": done.stderr.strip()[-400:]}
    expect(_Run(child), "Success", "managed identity chat")
    print(f"endpoint     {emu.identity_endpoint} (plain HTTP on the host, as App Service serves it)")
    print(f"answer       {child['outputs']['response']}")
    print(f"identity     {_caller(emu)} (the host's system-assigned identity)")


class _Run:
    """The child's JSON answer, read like a RunResult."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.status = data.get("status")
        self.message = data.get("message")


def _caller(emu: Emulator) -> str:
    """Who the emulator's data plane saw on the last chat call."""
    chats = [r for r in emu.requests if r.kind == "chat"]
    return chats[-1].client_id or "?" if chats else "?"
