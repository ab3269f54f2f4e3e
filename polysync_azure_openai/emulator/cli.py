"""`polysync-azure-openai emulator`: run the emulator by hand and write what a user needs to use it."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType

from .control import Emulator
from .dataplane import V1

PLATFORM_FILE = "platform.toml"
MANAGED_IDENTITY_FILE = "platform-managed-identity.toml"
WORKLOAD_IDENTITY_FILE = "platform-workload-identity.toml"
FEDERATED_TOKEN_FILE = "federated-token"  # noqa: S105 (a file name)
ENV_FILE = "emulator.env"
#: A hand-run emulator lives for hours; a day is the longest a projected token commonly lives.
FEDERATED_TOKEN_LIFETIME = 24 * 3600
SECRET_ENV = "POLYSYNC_EMULATOR_CLIENT_SECRET"  # noqa: S105 (a variable name, not a secret)
API_KEY_ENV = "POLYSYNC_EMULATOR_API_KEY"


def platform_attributes(emu: Emulator) -> dict[str, str]:
    """The platform attributes, named as the admin UI names them, that point at this emulator.

    The client secret is left out: it is a secret and goes through the environment. The API is
    v1 (the plugin's default), which serves every model the emulator deploys, Foundry ones included.
    """
    return {
        "OpenAI API Version": V1,
        "OpenAI Resource Name": emu.resource_name,
        "Subscription Id": emu.subscription_id,
        "Resource Group Name": emu.resource_group,
        "Azure Cloud": emu.cloud,
        "OpenAI Endpoint": emu.url,
        "Resource Manager Endpoint": emu.url,
        "Authority Host": emu.url,
        "Tenant Id": emu.tenant_id,
        "Client Id": emu.client_id,
    }


def _toml_string(value: str) -> str:
    # A JSON string literal is a valid TOML basic string.
    return json.dumps(value)


def platform_toml(emu: Emulator) -> str:
    lines = [
        f"# Azure OpenAI platform served by the local emulator at {emu.url}.",
        "# Valid while the emulator runs. The client secret is not in this file: it is read from",
        f"# the environment variable {SECRET_ENV} (see {ENV_FILE}).",
        'name = "Azure OpenAI Emulator"',
        'platform_type = "Azure OpenAI"',
        'auth_method = "Service Principal"',
        "",
        "[attributes]",
    ]
    lines += [f"{_toml_string(name)} = {_toml_string(value)}" for name, value in platform_attributes(emu).items()]
    lines.append(f'"Client Secret" = {{ env = {_toml_string(SECRET_ENV)} }}')
    return "\n".join(lines) + "\n"


def keyless_platform_toml(emu: Emulator, method: str, token_file: Path | None = None) -> str:
    """A platform file for `Managed Identity` (the host's system-assigned identity; the process
    needs the endpoint variables of the env file) or `Workload Identity` (the token file given)."""
    attributes = platform_attributes(emu)
    if method == "Managed Identity":
        for name in ("Tenant Id", "Client Id", "Authority Host"):
            del attributes[name]
        note = f"# Run with IDENTITY_ENDPOINT and IDENTITY_HEADER from {ENV_FILE} in the environment."
    else:
        attributes["Client Id"] = emu.workload_client_id
        attributes["Token File Path"] = str(token_file)
        note = "# The federated token file is the emulated cluster's service account token."
    lines = [
        f"# Azure OpenAI platform served by the local emulator at {emu.url}, as {method}.",
        note,
        f'name = "Azure OpenAI Emulator ({method})"',
        'platform_type = "Azure OpenAI"',
        f"auth_method = {_toml_string(method)}",
        "",
        "[attributes]",
    ]
    lines += [f"{_toml_string(name)} = {_toml_string(value)}" for name, value in attributes.items()]
    return "\n".join(lines) + "\n"


def write_state_files(emu: Emulator, state_dir: Path) -> tuple[Path, Path]:
    """Write `platform.toml`, the keyless methods' platform files with their federated token, and
    the owner-only `emulator.env`; return the paths of `platform.toml` and `emulator.env`."""
    state_dir.mkdir(parents=True, exist_ok=True)
    platform_path = state_dir / PLATFORM_FILE
    platform_path.write_text(platform_toml(emu), encoding="utf-8")
    token_file = emu.write_federated_token(state_dir / FEDERATED_TOKEN_FILE, lifetime=FEDERATED_TOKEN_LIFETIME)
    (state_dir / MANAGED_IDENTITY_FILE).write_text(keyless_platform_toml(emu, "Managed Identity"), encoding="utf-8")
    (state_dir / WORKLOAD_IDENTITY_FILE).write_text(keyless_platform_toml(emu, "Workload Identity", token_file), encoding="utf-8")
    env_path = state_dir / ENV_FILE
    env_text = "".join(
        f"{name}={shlex.quote(value)}\n"
        for name, value in (
            (SECRET_ENV, emu.client_secret),
            (API_KEY_ENV, emu.api_key),
            ("REQUESTS_CA_BUNDLE", emu.ca_path),
            *emu.managed_identity_environment().items(),
        )
    )
    # Created 0600 so the secrets are never readable by others, not even for an instant.
    descriptor = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as env_file:
        os.fchmod(env_file.fileno(), 0o600)
        env_file.write(env_text)
    return platform_path, env_path


def run_emulator_cli(argv: list[str] | None = None) -> int:
    """Run the emulator until Ctrl-C or SIGTERM; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="polysync-azure-openai emulator",
        description="Run a local Azure (Entra ID, Resource Manager, Azure OpenAI) over HTTPS on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where to write platform.toml and emulator.env (default: a new temporary directory)",
    )
    args = parser.parse_args(argv)

    own_dir = args.state_dir is None
    state_dir: Path = Path(tempfile.mkdtemp(prefix="polysync-emulator-")) if own_dir else args.state_dir
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, request_stop)
    try:
        # Run by hand, a batch must progress while its client polls: the clock follows real time.
        with Emulator(port=args.port, realtime_clock=True) as emu:
            platform_path, env_path = write_state_files(emu, state_dir)
            print(f"Azure emulator running at {emu.url} (Entra ID, Resource Manager, Azure OpenAI)")
            print(f"  OpenAI Endpoint:           {emu.url}")
            print(f"  Resource Manager Endpoint: {emu.url}")
            print(f"  Authority Host:            {emu.url}  (tenant {emu.tenant_id})")
            print(f"  CA certificate:            {emu.ca_path}")
            print(f"  Managed identity endpoint: {emu.identity_endpoint}  (IDENTITY_ENDPOINT, App Service style)")
            print(f"  Platform attributes:       {platform_path}")
            print(f"  ... as Managed Identity:   {state_dir / MANAGED_IDENTITY_FILE}")
            print(f"  ... as Workload Identity:  {state_dir / WORKLOAD_IDENTITY_FILE}")
            print(f"  Secrets and CA (env file): {env_path}")
            print("Press Ctrl-C to stop.", flush=True)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            print("Stopping the emulator.", flush=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        # The files name a secret that dies with the emulator; leave nothing stale behind.
        if own_dir:
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            for name in (PLATFORM_FILE, MANAGED_IDENTITY_FILE, WORKLOAD_IDENTITY_FILE, FEDERATED_TOKEN_FILE, ENV_FILE):
                (state_dir / name).unlink(missing_ok=True)
    return 0
