"""`polysync-azure-openai emulator`: run the emulator by hand and write what a user needs to use it."""

from __future__ import annotations

import argparse
import json
import math
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
from .ratelimit import DEFAULT_WINDOW_SECONDS, THROTTLE_SHAPES, ThrottleShape

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


def _positive_whole(text: str) -> int:
    if not (text.isascii() and text.isdecimal()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return int(text)


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return seconds


def _apply_rate_limits(parser: argparse.ArgumentParser, emu: Emulator, args: argparse.Namespace) -> list[str]:
    """Limit the deployments the flags name; one line per limited deployment, for the banner."""
    if args.requests_per_window is None and args.tokens_per_window is None:
        return []
    callable_ones = [d.name for d in emu.deployments if not d.is_batch_only and d.provisioning_state == "Succeeded"]
    names = args.limit_deployment or [
        d.name for d in emu.deployments if d.name in callable_ones and (d.supports("chatCompletion") or d.supports("embeddings"))
    ]
    unknown = [name for name in names if name not in callable_ones]
    if unknown:
        parser.error(f"--limit-deployment {unknown[0]!r} is not a callable deployment; choose from {', '.join(callable_ones)}")
    window = args.window_seconds or DEFAULT_WINDOW_SECONDS
    shape: ThrottleShape = args.throttle_shape or "retry-after-ms"
    for name in names:
        emu.set_rate_limit(name, requests=args.requests_per_window, tokens=args.tokens_per_window, window=window, shape=shape)
    allowed = " and ".join(
        f"{count} {what}" for count, what in ((args.requests_per_window, "requests"), (args.tokens_per_window, "tokens")) if count
    )
    return [f"{name}: {allowed} per {window:g} s window (429s with {shape})" for name in names]


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
    limits = parser.add_argument_group(
        "rate limit (per deployment, as Azure's quota: 429 once a window's requests or estimated tokens run out)"
    )
    limits.add_argument("--requests-per-window", type=_positive_whole, metavar="N", help="requests each window allows")
    limits.add_argument(
        "--tokens-per-window", type=_positive_whole, metavar="N", help="estimated tokens (prompt characters / 4 + max_tokens)"
    )
    limits.add_argument(
        "--window-seconds",
        type=_positive_seconds,
        metavar="S",
        help=f"length of a window (default: {DEFAULT_WINDOW_SECONDS:g}, Azure's minute)",
    )
    limits.add_argument("--throttle-shape", choices=THROTTLE_SHAPES, help="how a 429 names its wait (default: retry-after-ms)")
    limits.add_argument(
        "--limit-deployment",
        action="append",
        metavar="NAME",
        help="deployment to limit; repeat for more (default: every chat and embedding deployment)",
    )
    args = parser.parse_args(argv)
    tuning = {
        "--window-seconds": args.window_seconds,
        "--throttle-shape": args.throttle_shape,
        "--limit-deployment": args.limit_deployment,
    }
    if args.requests_per_window is None and args.tokens_per_window is None:
        given = [flag for flag, value in tuning.items() if value is not None]
        if given:
            parser.error(f"{', '.join(given)} needs --requests-per-window and/or --tokens-per-window")

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
        emulator = Emulator(port=args.port, realtime_clock=True)
        limited = _apply_rate_limits(parser, emulator, args)
        with emulator as emu:
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
            for line in limited:
                print(f"  Rate limit:                {line}")
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
