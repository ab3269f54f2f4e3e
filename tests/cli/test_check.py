"""``check``, the platform's Test connectivity, as a user runs it against the emulator."""

from __future__ import annotations

import json
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest

from polysync_azure_openai.emulator import OPENAI_USER_ROLE, READER_ROLE, Deployment, Emulator

from .helpers import SECRET_ENV, Done, cli, platform_file


def steps(done: Done) -> dict[str, dict[str, Any]]:
    return {step["step"]: step for step in done.json()["steps"]}


# -- check --------------------------------------------------------------------------------------


def test_check_passes_every_step_on_the_emulator(tmp_path: Path, emu: Emulator) -> None:
    done = cli("check", "--config", str(platform_file(tmp_path, emu)), "--json", env={SECRET_ENV: emu.client_secret})
    assert done.code == 0, done.stderr
    report = done.json()
    assert report["ok"] is True and report["platform"] == "test platform"
    assert [(s["step"], s["status"]) for s in report["steps"]] == [
        ("configuration", "OK"),
        ("token: data plane", "OK"),
        ("token: Resource Manager", "OK"),
        ("list deployments", "OK"),
        ("data-plane call", "OK"),
    ]
    assert "3 chat, 1 embedding, 3 batch" in report["steps"][3]["detail"]
    assert "the v1 API" in report["steps"][0]["detail"]
    assert "'gpt-4o'" in report["steps"][4]["detail"]
    chat = [r for r in emu.requests if r.kind == "chat"]
    assert len(chat) == 1 and json.loads(chat[0].body)["max_tokens"] == 1
    done.assert_no_secret(emu.client_secret)


def test_check_calls_a_reasoning_model_with_room_to_reason(tmp_path: Path, emu: Emulator) -> None:
    # With a budget of 1 a reasoning model's answer is always empty: a Failed run, a false alarm.
    emu.set_deployments([Deployment("DeepSeek-R1", "DeepSeek-R1", format="DeepSeek"), Deployment("o3-mini", "o3-mini")])
    done = cli("check", "--config", str(platform_file(tmp_path, emu)), "--json", env={SECRET_ENV: emu.client_secret})
    assert done.code == 0, done.stderr
    call = steps(done)["data-plane call"]
    assert "reasoning effort low" in call["detail"] and "'o3-mini'" in call["detail"]  # before the Foundry model
    [body] = [json.loads(r.body) for r in emu.requests if r.kind == "chat"]
    assert (body["model"], body["reasoning_effort"], body["max_completion_tokens"]) == ("o3-mini", "low", 500)


@pytest.mark.parametrize(
    ("override", "code", "fix"),
    [
        pytest.param({}, "AADSTS7000215", "set 'Client Secret' to the secret's Value", id="wrong-secret"),
        pytest.param(
            {"Tenant_Id": str(uuid.UUID(int=7))},
            "Unable to get authority configuration",
            "check 'Tenant Id' and 'Client Id'",
            id="wrong-tenant",
        ),
        pytest.param(
            {"Azure_Cloud": "AzureUSGovernment"}, "AADSTS70011", "set 'Azure Cloud' to the resource's cloud", id="wrong-cloud"
        ),
    ],
)
def test_check_reports_the_entra_error_and_the_fix(
    tmp_path: Path, emu: Emulator, override: dict[str, str], code: str, fix: str
) -> None:
    wrong = "wrong-" + emu.client_secret
    secret = emu.client_secret if override else wrong
    done = cli("check", "--config", str(platform_file(tmp_path, emu, **override)), "--json", env={SECRET_ENV: secret})
    assert done.code == 1, done.stderr
    report = steps(done)
    token = report["token: data plane"]
    assert token["status"] == "FAIL" and code in token["detail"] and fix in token["fix"]
    assert report["list deployments"]["status"] == report["data-plane call"]["status"] == "SKIP"
    assert not [r for r in emu.requests if r.kind in ("chat", "arm.deployments")]
    done.assert_no_secret(emu.client_secret, wrong)


@pytest.mark.parametrize(
    ("roles", "failing", "fix"),
    [
        pytest.param((OPENAI_USER_ROLE,), "list deployments", "grant the identity the 'Reader' role", id="no-reader"),
        pytest.param((READER_ROLE,), "data-plane call", "'Cognitive Services OpenAI User' role", id="no-openai-user"),
    ],
)
def test_check_names_the_missing_role(tmp_path: Path, emu: Emulator, roles: tuple[str, ...], failing: str, fix: str) -> None:
    client_id, secret = str(uuid.uuid4()), "role-test-secret-" + uuid.uuid4().hex
    emu.add_secret_client(client_id, secret, roles=roles)
    path = platform_file(tmp_path, emu, Client_Id=client_id)
    done = cli("check", "--config", str(path), "--deployment", "gpt-4o", "--json", env={SECRET_ENV: secret})
    assert done.code == 1, done.stderr
    report = steps(done)
    assert {name for name, step in report.items() if step["status"] == "FAIL"} == {failing}
    assert fix in report[failing]["fix"]
    done.assert_no_secret(secret)


def test_check_with_an_api_key_skips_tokens_and_explains_discovery(tmp_path: Path, emu: Emulator) -> None:
    path = platform_file(tmp_path, emu, auth_method="API Key")
    # An embedding deployment: the key platform cannot tell its kind, so chat is tried first.
    done = cli("check", "--config", str(path), "--deployment", "embed-small", env={SECRET_ENV: emu.api_key})
    assert done.code == 0, done.stderr
    assert "SKIP  token: data plane" in done.stdout
    assert "impossible with 'API Key'" in done.stdout and "Switch the platform to 'Service Principal'" in done.stdout
    assert "embedding on 'embed-small' answered" in done.stdout and "All 2 checks that ran passed; 3 skipped." in done.stdout
    done.assert_no_secret(emu.api_key)


def test_check_reports_a_bad_file_as_bad_input(tmp_path: Path, emu: Emulator) -> None:
    done = cli("check", "--config", str(platform_file(tmp_path, emu)), "--json")  # the variable is not set
    assert done.code == 2
    report = steps(done)
    assert report["configuration"]["status"] == "FAIL" and f"{SECRET_ENV}, which is not set" in report["configuration"]["detail"]
    assert {s["status"] for name, s in report.items() if name != "configuration"} == {"SKIP"}
    assert emu.requests == []


def test_check_on_the_embedded_emulator() -> None:
    done = cli("check", "--emulator")
    assert done.code == 0, done.stdout + done.stderr
    assert done.stdout.count("  OK  ") == 5 and "All 5 checks that ran passed." in done.stdout


# -- the keyless methods ------------------------------------------------------------------------


def keyless_file(tmp_path: Path, emu: Emulator, method: str, **claims: Any) -> tuple[Path, dict[str, str], str]:
    """The platform file the emulator writes for `method`, the environment Azure would give the
    worker, and the identity the emulator's services will see."""
    from polysync_azure_openai.emulator.cli import keyless_platform_toml

    token = emu.write_federated_token(tmp_path / f"token-{uuid.uuid4().hex[:6]}", **claims)
    path = tmp_path / f"{method.replace(' ', '-').lower()}.toml"
    path.write_text(keyless_platform_toml(emu, method, token), encoding="utf-8")
    if method == "Managed Identity":
        return path, emu.managed_identity_environment(), emu.system_assigned_client_id
    return path, {}, emu.workload_client_id


@pytest.mark.parametrize("method", ["Managed Identity", "Workload Identity"])
def test_check_passes_every_step_with_a_keyless_method(tmp_path: Path, emu: Emulator, method: str) -> None:
    path, env, identity = keyless_file(tmp_path, emu, method)
    done = cli("check", "--config", str(path), "--json", env=env)
    assert done.code == 0, done.stdout + done.stderr
    report = done.json()
    assert [s["status"] for s in report["steps"]] == ["OK"] * 5
    assert report["steps"][0]["detail"].startswith(f"{method}, resource '{emu.resource_name}'")
    assert {r.client_id for r in emu.requests if r.kind in ("chat", "arm.deployments")} == {identity}
    token_file = Path(tomllib.loads(path.read_text())["attributes"].get("Token File Path", str(path)))
    done.assert_no_secret(emu.identity_header, token_file.read_text())


@pytest.mark.parametrize(
    ("method", "claims", "env", "detail", "fix"),
    [
        pytest.param(
            "Managed Identity",
            {},
            {"IDENTITY_HEADER": "stale"},
            "HTTP 401",
            "restart the worker",
            id="managed-stale-header",
        ),
        pytest.param(
            "Workload Identity",
            {"audience": "api://other"},
            {},
            "AADSTS70021",
            "no federated identity credential of 'Client Id' matches",
            id="workload-wrong-audience",
        ),
    ],
)
def test_check_reports_a_keyless_failure_with_the_fix(
    tmp_path: Path, emu: Emulator, method: str, claims: dict[str, str], env: dict[str, str], detail: str, fix: str
) -> None:
    path, base_env, _ = keyless_file(tmp_path, emu, method, **claims)
    done = cli("check", "--config", str(path), "--json", env={**base_env, **env})
    assert done.code == 1, done.stdout + done.stderr
    token = steps(done)["token: data plane"]
    assert token["status"] == "FAIL" and detail in token["detail"] and fix in token["fix"]
    assert not [r for r in emu.requests if r.kind in ("chat", "arm.deployments")]
