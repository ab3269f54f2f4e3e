"""`run_emulator_cli`: the files it writes, what it prints, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def test_cli_writes_platform_and_env_files_and_stops_on_sigterm(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    program = (
        "import sys; from polysync_azure_openai.emulator.cli import run_emulator_cli; sys.exit(run_emulator_cli(sys.argv[1:]))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", program, "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        output = "".join(lines)
        platform = tomllib.loads((state_dir / "platform.toml").read_text())
        env_path = state_dir / "emulator.env"
        assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
        values = dict(line.split("=", 1) for line in env_path.read_text().splitlines())

        assert platform["platform_type"] == "Azure OpenAI"
        assert platform["auth_method"] == "Service Principal"
        attributes = platform["attributes"]
        url = attributes["OpenAI Endpoint"]
        assert url.startswith("https://127.0.0.1:")
        assert attributes["Resource Manager Endpoint"] == attributes["Authority Host"] == url
        assert attributes["OpenAI Resource Name"] == "emulator-aoai"
        assert attributes["Resource Group Name"] == "rg-emulator"
        assert {"Subscription Id", "Tenant Id", "Client Id"} <= set(attributes)
        assert attributes["Client Secret"] == {"env": "POLYSYNC_EMULATOR_CLIENT_SECRET"}
        secret = values["POLYSYNC_EMULATOR_CLIENT_SECRET"]
        api_key = values["POLYSYNC_EMULATOR_API_KEY"]
        assert secret not in (state_dir / "platform.toml").read_text()
        assert secret not in output and api_key not in output
        assert url in output and values["REQUESTS_CA_BUNDLE"] in output and str(env_path) in output

        # The files really describe a working emulator.
        session = requests.Session()
        session.trust_env = False
        token = session.post(
            f"{url}/{attributes['Tenant Id']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": attributes["Client Id"],
                "client_secret": secret,
                "scope": "https://cognitiveservices.azure.com/.default",
            },
            verify=values["REQUESTS_CA_BUNDLE"],
        )
        assert token.status_code == 200
        chat = session.post(
            f"{url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers={"api-key": api_key},
            verify=values["REQUESTS_CA_BUNDLE"],
        )
        assert chat.status_code == 200

        # The keyless methods: the host's identity endpoint and the cluster's federated token.
        managed = tomllib.loads((state_dir / "platform-managed-identity.toml").read_text())
        workload = tomllib.loads((state_dir / "platform-workload-identity.toml").read_text())
        assert managed["auth_method"] == "Managed Identity" and "Client Id" not in managed["attributes"]
        assert workload["auth_method"] == "Workload Identity"
        token_file = Path(workload["attributes"]["Token File Path"])
        assert token_file == state_dir / "federated-token" and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert values["IDENTITY_ENDPOINT"] in output and values["IDENTITY_HEADER"] not in output
        msi = session.get(
            values["IDENTITY_ENDPOINT"],
            params={"api-version": "2019-08-01", "resource": "https://cognitiveservices.azure.com"},
            headers={"X-IDENTITY-HEADER": values["IDENTITY_HEADER"]},
        )
        assert msi.status_code == 200
        exchanged = session.post(
            f"{url}/{workload['attributes']['Tenant Id']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": workload["attributes"]["Client Id"],
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": token_file.read_text(),
                "scope": "https://cognitiveservices.azure.com/.default",
            },
            verify=values["REQUESTS_CA_BUNDLE"],
        )
        assert exchanged.status_code == 200, exchanged.text
        session.close()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not env_path.exists()  # the secret died with the emulator
        assert not token_file.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()
