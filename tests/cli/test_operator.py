"""The operator commands as a user runs them: a subprocess, a platform file, secrets in the environment.

Each test starts its own emulator (fixture ``emu``), writes a platform TOML for it and runs
``python -m polysync_azure_openai.cli``; ``--json`` output is parsed and exit codes asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from polysync_azure_openai.cli import main
from polysync_azure_openai.cli.runs import decode_parameter
from polysync_azure_openai.emulator import OPENAI_USER_ROLE, READER_ROLE, Emulator
from polysync_azure_openai.errors import ConfigurationError

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


def cli(*args: str, env: dict[str, str] | None = None) -> Done:
    """Run the command as a user would."""
    done = subprocess.run(
        [sys.executable, "-m", "polysync_azure_openai.cli", *args],
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
    assert "2 chat, 1 embedding, 3 batch" in report["steps"][3]["detail"]
    assert "'gpt-4o'" in report["steps"][4]["detail"]
    chat = [r for r in emu.requests if r.kind == "chat"]
    assert len(chat) == 1 and json.loads(chat[0].body)["max_tokens"] == 1
    done.assert_no_secret(emu.client_secret)


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


# -- run, status, cancel, monitor-url, import ---------------------------------------------------


def test_run_chat_keeps_a_numeric_prompt_as_text(tmp_path: Path, emu: Emulator) -> None:
    path = platform_file(tmp_path, emu)
    done = cli(
        "run", "chat", "gpt-4o", "--config", str(path), "--param", "user_prompt=42", "--attr", "OpenAI Max Tokens=64", "--json",
        env={SECRET_ENV: emu.client_secret},
    )  # fmt: skip
    assert done.code == 0, done.stderr
    result = done.json()
    assert result["run_id"] == "gpt-4o#sync#Success" and result["status"] == "Success"
    assert result["outputs"]["finish_reason"] == "stop" and "42" in result["outputs"]["response"]
    assert datetime.fromisoformat(result["started_at"]) <= datetime.fromisoformat(result["ended_at"])
    (chat,) = [json.loads(r.body) for r in emu.requests if r.kind == "chat"]
    assert chat["messages"] == [{"role": "user", "content": "42"}] and chat["max_tokens"] == 64
    done.assert_no_secret(emu.client_secret)


def test_run_against_a_missing_deployment_is_a_remote_failure(tmp_path: Path, emu: Emulator) -> None:
    path = platform_file(tmp_path, emu)
    done = cli(
        "run",
        "chat",
        "no-such",
        "--config",
        str(path),
        "--param",
        "user_prompt=hi",
        "--json",
        env={SECRET_ENV: emu.client_secret},
    )
    assert done.code == 1
    result = done.json()
    assert result["status"] == "Failed" and result["run_id"] == "no-such#sync#Failed"
    assert "DeploymentNotFound" in result["message"] and "re-run Import Jobs" in result["message"]


def test_run_embedding_on_the_embedded_emulator_prints_text() -> None:
    done = cli("run", "Azure OpenAI Embedding", "embed-small", "--emulator", "--param", "input=hello")
    assert done.code == 0, done.stderr
    assert "RunId      embed-small#sync#Success" in done.stdout and "[1536 values: " in done.stdout


def test_status_cancel_and_monitor_url_read_the_run_id(tmp_path: Path, emu: Emulator) -> None:
    path = str(platform_file(tmp_path, emu))
    env = {SECRET_ENV: emu.client_secret}
    status = cli("status", "gpt-4o#sync#Success", "--config", path, "--json", env=env)
    assert status.code == 0 and status.json()["status"] == "Success"
    failed = cli("status", "embed-small#sync#Failed", "--job-type", "embedding", "--config", path, env=env)
    assert failed.code == 1 and "Status     Failed" in failed.stdout
    cancel = cli("cancel", "gpt-4o#sync#Success", "--config", path, "--json", env=env)
    assert cancel.code == 0 and "Cancel is not supported" in cancel.json()["message"]
    monitor = cli("monitor-url", "gpt-4o#sync#Success", "--config", path, env=env)
    assert monitor.code == 0
    assert monitor.stdout.strip() == (
        f"https://portal.azure.com/#@/resource/subscriptions/{emu.subscription_id}/resourceGroups/{emu.resource_group}"
        f"/providers/Microsoft.CognitiveServices/accounts/{emu.resource_name}/overview"
    )
    assert emu.requests == []  # synchronous RunIds are decoded locally


def test_import_lists_the_jobs(tmp_path: Path, emu: Emulator) -> None:
    done = cli("import", "--config", str(platform_file(tmp_path, emu)), "--json", env={SECRET_ENV: emu.client_secret})
    assert done.code == 0, done.stderr
    jobs = {(j["job_type"], j["external_id"]): j for j in done.json()["jobs"]}
    assert ("Azure OpenAI Batch Job", "gpt-4o-batch::batch") in jobs
    chat = jobs[("Azure OpenAI Chat Completion", "gpt-4o")]
    assert chat["attributes"]["Deployment Name"] == "gpt-4o"
    assert {"name": "user_prompt", "direction": "Input", "data_type": "String", "required": True}.items() <= chat["parameters"][
        1
    ].items()


def test_import_with_an_api_key_is_bad_input(tmp_path: Path, emu: Emulator) -> None:
    done = cli("import", "--config", str(platform_file(tmp_path, emu, auth_method="API Key")), env={SECRET_ENV: emu.api_key})
    assert done.code == 2 and "Import Jobs needs Microsoft Entra ID authentication" in done.stderr
    done.assert_no_secret(emu.api_key)


BAD_INPUT = [
    pytest.param(
        ["run", "chatty", "gpt-4o", "--param", "user_prompt=hi"],
        "Unknown job type 'chatty'. Use chat, embedding or batch",
        id="job-type",
    ),
    pytest.param(
        ["run", "chat", "gpt-4o", "--param", "prompt=hi"],
        "--param 'prompt' is not a parameter of this job type. Azure OpenAI Chat Completion takes: system_prompt, user_prompt.",
        id="param-name",
    ),
    pytest.param(
        ["run", "chat", "gpt-4o", "--param", "response=hi"], "--param 'response' is an Output parameter", id="output-param"
    ),
    pytest.param(["run", "chat", "gpt-4o", "--param", "user_prompt"], "is not NAME=VALUE", id="param-form"),
    pytest.param(["run", "chat", "gpt-4o"], "parameter 'user_prompt' is missing", id="param-missing"),
    pytest.param(
        ["run", "chat", "gpt-4o", "--param", "user_prompt=hi", "--attr", "OpenAI Max Tokens=-1"],
        "attribute 'OpenAI Max Tokens' is '-1'",
        id="attr-value",
    ),
    pytest.param(
        ["run", "chat", "gpt-4o", "--param", "user_prompt=hi", "--attr", "Max Tokens=1"],
        "--attr 'Max Tokens' is not an attribute",
        id="attr-name",
    ),
    pytest.param(["status", "12345"], "RunId '12345' is not one this plugin issues", id="run-id"),
    pytest.param(
        ["status", "gpt-4o#sync#Success", "--job-type", "batch"],
        "is not one this plugin issued for Azure OpenAI Batch Job",
        id="run-id-type",
    ),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_INPUT)
def test_bad_input_exits_2_before_any_request(tmp_path: Path, emu: Emulator, args: list[str], fragment: str) -> None:
    done = cli(*args, "--config", str(platform_file(tmp_path, emu)), "--json", env={SECRET_ENV: emu.client_secret})
    assert done.code == 2, done.stdout + done.stderr
    error = done.json()["error"]
    assert error["kind"] == "bad_input" and fragment in error["message"]
    assert fragment in done.stderr
    assert emu.requests == []


def test_an_inline_secret_is_refused_without_showing_it(tmp_path: Path, emu: Emulator) -> None:
    path = platform_file(tmp_path, emu, Client_Secret=emu.client_secret)
    done = cli("run", "chat", "gpt-4o", "--config", str(path), "--param", "user_prompt=hi")
    assert done.code == 2
    assert "attribute 'Client Secret' is a secret written into the file" in done.stderr
    done.assert_no_secret(emu.client_secret)
    assert emu.requests == []


def test_arguments_are_checked_by_the_parser() -> None:
    done = cli("run", "chat", "gpt-4o")
    assert done.code == 2 and "one of the arguments --config --emulator is required" in done.stderr


COMMANDS = [
    ["check"],
    ["import"],
    ["run"],
    ["status"],
    ["cancel"],
    ["monitor-url"],
    ["batch"],
    ["batch", "upload"],
    ["batch", "download"],
    ["demo"],
    ["emulator"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: polysync-azure-openai " + " ".join(command))
    if command[0] not in ("demo", "emulator", "batch") or len(command) > 1:
        assert "--config PATH" in text and "--json" in text and "exit codes:" in text


@pytest.mark.parametrize(
    ("data_type", "text", "value"),
    [
        ("String", "42", "42"),
        ("String", '{"a": 1}', '{"a": 1}'),
        ("Int", " -7 ", -7),
        ("Float", "0.5", 0.5),
        ("Bool", "True", True),
        ("JSON", '{"a": [1, 2]}', {"a": [1, 2]}),
        ("JSON", "42", 42),
    ],
)
def test_parameters_are_decoded_by_their_declared_type(data_type: str, text: str, value: object) -> None:
    decoded = decode_parameter("p", data_type, text)
    assert decoded == value and type(decoded) is type(value)


@pytest.mark.parametrize(
    ("data_type", "text", "fragment"),
    [
        ("Int", "1.5", "is an Int parameter, and '1.5' is not a whole number"),
        ("Int", "--7", "is not a whole number"),
        ("Float", "nan", "is not a finite number"),
        ("Bool", "yes", "use true or false"),
        ("JSON", "{oops", "is not valid JSON"),
        # Past Python's own limits: int() and json.loads raised their raw errors.
        ("Int", "9" * 5000, "is not a whole number"),
        ("JSON", "[" * 100_000 + "]" * 100_000, "nested too deeply to read"),
    ],
)
def test_a_value_that_does_not_fit_its_type_is_bad_input(data_type: str, text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(fragment)):
        decode_parameter("p", data_type, text)
