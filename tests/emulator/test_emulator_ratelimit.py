"""The rate-limit model: Azure's estimate, windows, remaining headers, the three 429 shapes, settings."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai
import pytest
import requests

from polysync_azure_openai.cli.main import main as cli_main
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator.cli import run_emulator_cli
from polysync_azure_openai.emulator.ratelimit import duration, estimated_tokens

from .emulator_helpers import REASONING_API_VERSION, chat_url, embeddings_url

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "Name a prime number."  # 20 characters: 5 tokens by Azure's estimate


def chat(http: requests.Session, emu: Emulator, max_tokens: int | None = 15, deployment: str = "gpt-4o") -> requests.Response:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": PROMPT}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    url = chat_url(emu, deployment, api_version=REASONING_API_VERSION)
    return http.post(url, json=body, headers={"api-key": emu.api_key})


def remaining(response: requests.Response) -> tuple[int, int]:
    return int(response.headers["x-ratelimit-remaining-requests"]), int(response.headers["x-ratelimit-remaining-tokens"])


# -- Azure's estimate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,tokens",
    [
        ({"messages": [{"role": "user", "content": "x" * 20}], "max_tokens": 15}, 20),
        ({"messages": [{"role": "system", "content": "x" * 3}, {"role": "user", "content": "x" * 6}]}, 3),
        ({"messages": [{"role": "user", "content": "x" * 8}], "max_completion_tokens": 100}, 102),
        ({"input": "x" * 10}, 3),
        ({"input": ["x" * 4, "x" * 4]}, 2),
        ({"messages": "not a list", "max_tokens": True}, 0),
    ],
    ids=["chat", "messages-summed-rounded-up", "max-completion-tokens", "embedding", "embedding-list", "malformed"],
)
def test_the_token_estimate_is_prompt_characters_over_4_plus_max_tokens(body: dict[str, Any], tokens: int) -> None:
    assert estimated_tokens(body) == tokens


# -- windows and the remaining headers ---------------------------------------------------------


def test_requests_count_down_then_429_names_the_call_limit(emu: Emulator, http: requests.Session) -> None:
    emu.set_rate_limit("gpt-4o", requests=3)
    answers = [chat(http, emu) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [int(a.headers["x-ratelimit-remaining-requests"]) for a in answers] == [2, 1, 0, 0]
    # Tokens stay unlimited: the capacity-derived value the emulator always sends.
    assert int(answers[0].headers["x-ratelimit-remaining-tokens"]) > 40_000
    message = answers[3].json()["error"]["message"]
    assert "exceeded call rate limit" in message and "ChatCompletions_Create" in message
    assert [r.status for r in emu.requests if r.kind == "chat"] == [200, 200, 200, 429]


def test_tokens_count_azures_estimate_not_the_usage(emu: Emulator, http: requests.Session) -> None:
    emu.set_rate_limit("gpt-4o", tokens=45)  # 5 prompt + 15 max_tokens = 20 per request
    first, second, third = (chat(http, emu) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert remaining(first)[1] == 25 and remaining(second)[1] == 5
    assert remaining(third)[1] == 5  # the throttled request cost nothing
    assert "exceeded token rate limit" in third.json()["error"]["message"]
    assert chat(http, emu, max_tokens=None).status_code == 200  # 5 tokens still fit


def test_embeddings_count_their_input(emu: Emulator, http: requests.Session) -> None:
    emu.set_rate_limit("embed-small", tokens=10)
    post = lambda: http.post(embeddings_url(emu), json={"input": "x" * 20}, headers={"api-key": emu.api_key})  # noqa: E731
    assert [post().status_code for _ in range(3)] == [200, 200, 429]
    assert "Embeddings_Create" in post().json()["error"]["message"]


def test_a_deployment_gets_its_own_window(emu: Emulator, http: requests.Session) -> None:
    emu.set_rate_limit("gpt-4o", requests=1)
    assert [chat(http, emu).status_code for _ in range(2)] == [200, 429]
    assert chat(http, emu, max_tokens=None, deployment="o3-mini").status_code == 200  # another deployment: unlimited
    assert emu.rate_limits["gpt-4o"].requests == 1 and "o3-mini" not in emu.rate_limits


def test_the_window_resets_after_the_wait_the_429_names(emu: Emulator, http: requests.Session) -> None:
    emu.set_rate_limit("gpt-4o", requests=2, window=1.5)
    assert [chat(http, emu).status_code for _ in range(3)] == [200, 200, 429]
    throttled = [r for r in emu.requests if r.status == 429]
    assert len(throttled) == 1
    wait = int(chat(http, emu).headers["retry-after-ms"])
    assert 0 < wait <= 1500
    time.sleep(wait / 1000)
    fresh = chat(http, emu)
    assert fresh.status_code == 200 and remaining(fresh)[0] == 1


def test_an_invalid_request_counts_a_throttled_one_does_not(emu: Emulator, http: requests.Session) -> None:
    emu.set_rate_limit("gpt-4o", requests=2)
    bad = http.post(chat_url(emu), json={"messages": []}, headers={"api-key": emu.api_key})
    assert bad.status_code == 400 and bad.headers["x-ratelimit-remaining-requests"] == "1"
    assert chat(http, emu).status_code == 200
    assert [chat(http, emu).headers["x-ratelimit-remaining-requests"] for _ in range(2)] == ["0", "0"]


def test_setting_a_limit_again_starts_afresh_and_clearing_lifts_it(emu: Emulator, http: requests.Session) -> None:
    emu.set_rate_limit("gpt-4o", requests=1)
    assert [chat(http, emu).status_code for _ in range(2)] == [200, 429]
    emu.set_rate_limit("gpt-4o", requests=1)
    assert chat(http, emu).status_code == 200
    emu.clear_rate_limits()
    assert emu.rate_limits == {}
    assert [chat(http, emu).status_code for _ in range(3)] == [200, 200, 200]


# -- the three 429 shapes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,present,absent",
    [
        ("retry-after-ms", {"retry-after-ms", "retry-after"}, {"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"}),
        ("retry-after", {"retry-after"}, {"retry-after-ms", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"}),
        ("none", {"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"}, {"retry-after-ms", "retry-after"}),
    ],
)
def test_each_429_shape(emu: Emulator, http: requests.Session, shape: Any, present: set[str], absent: set[str]) -> None:
    emu.set_rate_limit("gpt-4o", requests=1, window=30, shape=shape)
    chat(http, emu)
    throttled = chat(http, emu)
    assert throttled.status_code == 429
    names = {name.lower() for name in throttled.headers}
    assert present <= names and not absent & names
    seconds = int(throttled.json()["error"]["message"].split("Please retry after ")[1].split(" ")[0])
    assert 1 <= seconds <= 30
    if shape == "retry-after-ms":
        assert 0 < int(throttled.headers["retry-after-ms"]) <= 30_000
        assert int(throttled.headers["retry-after"]) == seconds
    elif shape == "retry-after":
        assert int(throttled.headers["retry-after"]) == seconds
    else:
        assert throttled.headers["x-ratelimit-reset-requests"].endswith("s")
    assert throttled.headers["x-ratelimit-remaining-requests"] == "0"


@pytest.mark.parametrize(
    "seconds,text",
    [(0.25, "250ms"), (0.0004, "1ms"), (4, "4s"), (1.5, "1.5s"), (59.9984, "59.999s"), (59.9994, "1m0s"), (360, "6m0s")],
)
def test_reset_durations_use_openais_notation(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_openai_sdk_reads_the_429_and_waits_as_asked(emu: Emulator) -> None:
    """A client nobody here wrote: RateLimitError without retries, and a retry after retry-after-ms."""
    emu.set_rate_limit("gpt-4o", requests=1, window=2)
    http_client = openai.DefaultHttpxClient(verify=ssl.create_default_context(cafile=emu.ca_path), trust_env=False)
    common: dict[str, Any] = {"azure_endpoint": emu.url, "api_key": emu.api_key, "api_version": REASONING_API_VERSION}
    strict = openai.AzureOpenAI(**common, http_client=http_client, max_retries=0)
    messages: Any = [{"role": "user", "content": PROMPT}]
    strict.chat.completions.create(model="gpt-4o", messages=messages)
    with pytest.raises(openai.RateLimitError) as throttled:
        strict.chat.completions.create(model="gpt-4o", messages=messages)
    assert throttled.value.status_code == 429 and throttled.value.code == "429"
    patient = openai.AzureOpenAI(**common, http_client=http_client, max_retries=1)
    assert patient.chat.completions.create(model="gpt-4o", messages=messages).choices[0].message.content
    assert [r.status for r in emu.requests if r.kind == "chat"] == [200, 429, 429, 200]


# -- bad settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings,named",
    [
        ({"requests": 0}, "requests"),
        ({"requests": -5}, "requests"),
        ({"requests": 1.5}, "requests"),
        ({"requests": True}, "requests"),
        ({"requests": "10"}, "requests"),
        ({"tokens": 0}, "tokens"),
        ({"requests": 1, "window": 0}, "window"),
        ({"requests": 1, "window": -1}, "window"),
        ({"requests": 1, "window": float("nan")}, "window"),
        ({"requests": 1, "window": float("inf")}, "window"),
        ({"requests": 1, "window": "60"}, "window"),
        ({"requests": 1, "shape": "sometimes"}, "shape"),
        ({}, "requests or tokens"),
    ],
    ids=lambda value: repr(value) if not isinstance(value, dict) else "-".join(f"{k}={v}" for k, v in value.items()) or "none",
)
def test_bad_settings_are_refused_naming_the_setting(emu: Emulator, settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        emu.set_rate_limit("gpt-4o", **settings)
    assert emu.rate_limits == {} and emu.requests == []


def test_an_unknown_deployment_is_refused_with_the_names_there_are(emu: Emulator) -> None:
    with pytest.raises(ValueError, match=r"no deployment named 'gpt-5'.*gpt-4o"):
        emu.set_rate_limit("gpt-5", requests=1)


@pytest.mark.parametrize(
    "argv,named",
    [
        (["--requests-per-window", "0"], "argument --requests-per-window: must be a positive whole number, not '0'"),
        (["--requests-per-window", "ten"], "argument --requests-per-window: must be a positive whole number, not 'ten'"),
        (["--tokens-per-window", "1.5"], "argument --tokens-per-window: must be a positive whole number, not '1.5'"),
        (["--tokens-per-window", "-3"], "argument --tokens-per-window: must be a positive whole number, not '-3'"),
        (["--requests-per-window", "5", "--window-seconds", "0"], "argument --window-seconds: must be a positive number"),
        (["--requests-per-window", "5", "--window-seconds", "soon"], "argument --window-seconds: must be a positive number"),
        (["--requests-per-window", "5", "--window-seconds", "nan"], "argument --window-seconds: must be a positive number"),
        (["--requests-per-window", "5", "--throttle-shape", "daily"], "argument --throttle-shape: invalid choice: 'daily'"),
        (["--window-seconds", "5"], "--window-seconds needs --requests-per-window and/or --tokens-per-window"),
        (["--requests-per-window", "5", "--limit-deployment", "gpt-4o-batch"], "--limit-deployment 'gpt-4o-batch' is not"),
    ],
)
@pytest.mark.parametrize("entry", ["emulator-cli", "main-cli"])
def test_bad_emulator_flags_are_refused_naming_the_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str, entry: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        if entry == "emulator-cli":
            run_emulator_cli(argv)
        else:
            cli_main(["emulator", *argv])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "polysync-azure-openai emulator: error:" in error and named in error


def test_the_emulator_command_limits_deployments_as_its_flags_say(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    program = "import sys; from polysync_azure_openai.cli.main import main; sys.exit(main(sys.argv[1:]))"
    flags = ["--requests-per-window", "2", "--window-seconds", "30", "--throttle-shape", "none", "--limit-deployment", "gpt-4o"]
    process = subprocess.Popen(
        [sys.executable, "-c", program, "emulator", "--state-dir", str(state_dir), *flags],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        assert "  Rate limit:                gpt-4o: 2 requests per 30 s window (429s with none)\n" in lines
        values = dict(line.split("=", 1) for line in (state_dir / "emulator.env").read_text().splitlines())
        url = next(line.split()[-1] for line in lines if line.strip().startswith("OpenAI Endpoint:"))
        with requests.Session() as session:
            session.trust_env = False
            session.verify = values["REQUESTS_CA_BUNDLE"]
            statuses = [
                session.post(
                    f"{url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                    json={"messages": [{"role": "user", "content": "hi"}]},
                    headers={"api-key": values["POLYSYNC_EMULATOR_API_KEY"]},
                )
                for _ in range(3)
            ]
        assert [s.status_code for s in statuses] == [200, 200, 429]
        assert "x-ratelimit-reset-requests" in statuses[2].headers
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
