"""The hook commands as a user runs them: import, run, status, cancel, monitor-url, and the parser."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from polysync_azure_openai.cli import main
from polysync_azure_openai.cli.runs import decode_parameter
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.errors import ConfigurationError

from .helpers import SECRET_ENV, cli, platform_file


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


def test_run_chat_with_reasoning_effort_and_a_response_schema(tmp_path: Path, emu: Emulator) -> None:
    path, env = str(platform_file(tmp_path, emu)), {SECRET_ENV: emu.client_secret}
    reasoning = cli(
        "run", "chat", "o3-mini", "--config", path, "--param", "user_prompt=Is 91 prime?",
        "--attr", "Model Name=o3-mini", "--attr", "OpenAI Reasoning Effort=low", "--json",
        env=env,
    )  # fmt: skip
    assert reasoning.code == 0, reasoning.stderr
    assert reasoning.json()["outputs"]["reasoning_tokens"] == 32
    schema = '{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": false}'
    structured = cli(
        "run", "chat", "gpt-4o", "--config", path, "--param", "user_prompt=A number", "--param", f"response_schema={schema}",
        env=env,
    )  # fmt: skip
    assert structured.code == 0, structured.stderr
    assert re.search(r"response_json +\{\"n\": 7\}", structured.stdout), structured.stdout
    [body] = [json.loads(r.body) for r in emu.requests if r.kind == "chat" and "response_format" in json.loads(r.body)]
    assert body["response_format"]["json_schema"]["schema"] == json.loads(schema)


def test_run_embedding_with_inputs_and_dimensions(tmp_path: Path, emu: Emulator) -> None:
    done = cli(
        "run", "embedding", "embed-small", "--config", str(platform_file(tmp_path, emu)), "--param", 'inputs=["one", "two", "three"]',
        "--attr", "Model Name=text-embedding-3-small", "--attr", "OpenAI Dimensions=8",
        env={SECRET_ENV: emu.client_secret},
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert re.search(r"embeddings +\[3 vectors: \[8 values: ", done.stdout), done.stdout
    assert re.search(r"embedding +null", done.stdout)


def test_a_reasoning_effort_outside_the_list_is_bad_input(tmp_path: Path, emu: Emulator) -> None:
    done = cli(
        "run", "chat", "o3-mini", "--config", str(platform_file(tmp_path, emu)), "--param", "user_prompt=hi",
        "--attr", "Model Name=o3-mini", "--attr", "OpenAI Reasoning Effort=max",
        env={SECRET_ENV: emu.client_secret},
    )  # fmt: skip
    assert done.code == 2 and "'OpenAI Reasoning Effort' is 'max'" in done.stderr
    assert not [r for r in emu.requests if r.kind == "chat"]


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
        "--param 'prompt' is not a parameter of this job type. Azure OpenAI Chat Completion takes: system_prompt, user_prompt, response_schema.",
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
    ["batch", "results"],
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
