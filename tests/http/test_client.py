"""HttpClient.send against the emulator: headers, the session, and the loop's use of decide."""

from __future__ import annotations

import logging
import re

import pluggy
import pytest

from polysync_azure_openai.emulator import Deployment, Emulator
from polysync_azure_openai.emulator import faults as f
from polysync_azure_openai.errors import ErrorDetail, TransportError
from polysync_azure_openai.http import create
from polysync_azure_openai.http.azure_errors import RetryHint
from polysync_azure_openai.http.client import _with_quota_note
from polysync_azure_openai.http.decide import GiveUp
from polysync_azure_openai.jobs import CHAT

from ..conftest import imported, job, sp_platform
from .test_pacer import in_threads


def chat(pm: pluggy.PluginManager, emu: Emulator, **platform: str):
    return pm.hook.submit(
        platform=sp_platform(emu, **platform), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"
    )


def test_every_request_has_user_agent_accepts_json_and_has_a_fresh_client_request_id(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    platform = sp_platform(emu)
    pm.hook.import_jobs(platform=platform)
    for _ in range(3):
        pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    azure = [r for r in emu.requests if r.kind in ("arm.deployments", "chat")]
    assert len(azure) == 4
    assert all(r.headers["user-agent"].startswith("polysync-azure-openai/0.1.0 ") for r in azure)
    assert all(r.headers["accept"] == "application/json" for r in azure)
    ids = [r.headers["x-ms-client-request-id"] for r in azure]
    assert len(set(ids)) == 4


def test_session_is_reused_across_calls(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """Keep-alive: three calls of one platform ride one TLS connection."""
    platform = sp_platform(emu)
    for _ in range(3):
        pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    chats = [r for r in emu.requests if r.kind == "chat"]
    assert len({r.connection_id for r in chats}) == 1


def test_retries_keep_the_client_request_id(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.throttled(retry_after_ms=5), kind="chat", times=2)
    assert chat(pm, emu).status == "Success"
    ids = [r.headers["x-ms-client-request-id"] for r in emu.requests if r.kind == "chat"]
    assert len(ids) == 3 and len(set(ids)) == 1


@pytest.mark.parametrize(
    "fault,logged",
    [
        (f.throttled(retry_after_ms=5), "HTTP 429; retrying in 0.01 s"),
        (f.throttled(retry_after=1), "HTTP 429; retrying in 1.00 s"),
        (f.Status(503, headers={"retry-after-ms": "30"}), "HTTP 503; retrying in 0.03 s"),
    ],
    ids=["retry-after-ms", "retry-after", "503-retry-after-ms"],
)
def test_the_wait_azure_asks_for_is_the_wait(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture, fault: object, logged: str
) -> None:
    caplog.set_level(logging.INFO, logger="polysync_azure_openai")
    emu.inject(fault, kind="chat", times=1)
    assert chat(pm, emu).status == "Success"
    assert [m for r in caplog.records if "retrying in" in (m := r.getMessage())] == [
        f"POST /openai/v1/chat/completions: {logged} (attempt 2 of 4)"
    ]


def test_with_no_wait_named_the_first_retry_backs_off_a_jittered_quarter_to_half_second(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """decide.backoff: 0.5 s for the first retry, scaled by a jitter drawn from [0.5, 1] for each
    request, so that calls failing together do not come back together."""
    caplog.set_level(logging.WARNING, logger="polysync_azure_openai")
    platform = sp_platform(emu, Max_Retries="1")
    assert chat(pm, emu, Max_Retries="1").status == "Success"  # the token, before the calls race
    emu.inject(f.Status(503), kind="chat", times=None)  # every call retries once, whatever the timing

    def one(_: int) -> str:
        result = pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
        return str(result.status)

    assert in_threads(8, one) == ["Failed"] * 8
    waits = [
        float(found[1])
        for r in caplog.records
        if (found := re.search(r"HTTP 503; retrying in ([0-9.]+) s \(attempt 2 of 2\)", r.getMessage()))
    ]
    assert len(waits) == 8
    assert all(0.25 <= wait <= 0.5 for wait in waits)
    assert len(set(waits)) > 1  # eight equal draws from [0.25, 0.5] at 10 ms steps: about 1 in 10^10


def test_the_retry_log_of_a_next_link_names_its_path_without_the_query(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A nextLink is sent as the full URL Azure gave, query and all; the log line names the path."""
    caplog.set_level(logging.WARNING, logger="polysync_azure_openai")
    emu.set_deployments([Deployment(name=f"d{i}", model="gpt-4o-mini") for i in range(3)])
    emu.page_size = 2
    emu.inject(f.Delay(0), kind="arm.deployments", times=1)  # the first page, as it is
    emu.inject(f.Status(503, headers={"retry-after-ms": "10"}), kind="arm.deployments", times=1)  # the nextLink
    assert len(imported(pm, sp_platform(emu))) == 6  # chat and batch for each
    pages = [r for r in emu.requests if r.kind == "arm.deployments"]
    assert [("$skipToken" in r.query, r.status) for r in pages] == [(False, 200), (True, 503), (True, 200)]
    assert [m for r in caplog.records if "retrying in" in (m := r.getMessage())] == [
        f"GET {pages[0].path}: HTTP 503; retrying in 0.01 s (attempt 2 of 4)"
    ]


def test_the_resend_after_a_401_is_no_retry(pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    assert chat(pm, emu).status == "Success"
    emu.revoke_tokens()
    emu.inject(f.Status(401), kind="chat", times=1)
    caplog.set_level(logging.INFO, logger="polysync_azure_openai")
    assert chat(pm, emu, Max_Retries="0").status == "Success"
    assert sum(1 for r in emu.requests if r.kind == "chat") == 3
    # The resend is logged (INFO) with the request's method and path, as no retry.
    path = [r for r in emu.requests if r.kind == "chat"][-1].path
    assert [m for r in caplog.records if "401" in (m := r.getMessage())] == [f"POST {path}: 401, resending once with a new token"]


# The client sends every attempt with PlatformConfig.timeout, (min(10 s, Request Timeout Seconds),
# Request Timeout Seconds). With the pair swapped, the two differ only above 10 s, so only a
# timeout above 10 s tells them apart: an answer 11 s late must still be waited for (read
# timeout 13 s), which a read timeout capped at the 10 s connect timeout would abandon.
@pytest.mark.timeout(60)
def test_request_timeout_above_the_connect_cap_is_the_read_timeout(pm: pluggy.PluginManager, emu: Emulator) -> None:
    slow = emu.inject(f.Delay(11), kind="chat", times=1)
    result = chat(pm, emu, Request_Timeout_Seconds="13", Max_Retries="0")
    assert result.status == "Success", result.message
    assert slow.hits == 1


def test_a_final_429_names_the_budget_left_after_the_waits_already_spent(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """'Request Timeout Seconds' 150 makes the budget 150 s; after a 10 ms wait, 149.99 s are left,
    which reads "2 min" (150.01 s would read "3 min")."""
    emu.inject(f.throttled(retry_after_ms=10), kind="chat", times=1)
    emu.inject(f.throttled(86400, shape="retry-after"), kind="chat", times=1)
    result = chat(pm, emu, Request_Timeout_Seconds="150")
    assert result.status == "Failed"
    assert (
        "[Azure asked to wait 24 h (retry-after: '86400'), more than the 2 min this run may still wait, "
        "so it was not sent again]" in result.message
    ), result.message
    assert [r.status for r in emu.requests if r.kind == "chat"] == [429, 429]


def test_a_request_timeout_above_two_minutes_raises_the_wait_budget(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The budget is max(2 min, 'Request Timeout Seconds'): with 300 s, a final 429 says 5 min were left."""
    emu.inject(f.throttled(86400, shape="retry-after"), kind="chat", times=1)
    result = chat(pm, emu, Request_Timeout_Seconds="300")
    assert result.status == "Failed"
    assert "more than the 5 min this run may still wait, so it was not sent again]" in result.message, result.message
    assert [r.status for r in emu.requests if r.kind == "chat"] == [429]


@pytest.mark.parametrize(
    "may_wait,left",
    [(30.0, "30 s"), (0.5, "0.50 s"), (-2.0, "0.00 s")],
    ids=["seconds-left", "under-a-second-left", "overdrawn"],
)
def test_a_final_429_whose_wait_passes_the_budget_names_what_was_left(may_wait: float, left: str) -> None:
    # Through a submit the budget is 2 min less what was waited; here the note alone, on any budget.
    detail = ErrorDetail(429, "429", "Rate limit reached.", "req-1")
    hint = RetryHint(90.0, "retry-after: '90'")
    noted = _with_quota_note(detail, hint, GiveUp(wait=90.0), may_wait)
    assert noted.message == (
        f"Rate limit reached. [Azure asked to wait 90 s (retry-after: '90'), more than the {left} "
        "this run may still wait, so it was not sent again]"
    )
    assert (noted.status, noted.code, noted.request_id, noted.retry_after) == (429, "429", "req-1", 90.0)


@pytest.mark.parametrize(
    "hint,note",
    [
        (RetryHint(0.01, "retry-after-ms: '10'", exact=True), "Azure sent retry-after-ms: '10'"),
        (
            RetryHint(None, "retry-after: 'soon'"),
            "Azure sent retry-after: 'soon', which names no usable wait: the plugin backed off instead",
        ),
        (RetryHint(None, ""), "Azure sent no retry header"),
    ],
    ids=["a-usable-wait", "no-usable-wait", "no-retry-header"],
)
def test_a_final_429_after_the_retries_says_what_azure_sent(hint: RetryHint, note: str) -> None:
    detail = ErrorDetail(429, "429", "Rate limit reached.", "req-1")
    noted = _with_quota_note(detail, hint, GiveUp(), 120.0)
    assert noted.message == f"Rate limit reached. [{note}]"
    assert noted.retry_after == hint.seconds


def test_a_look_up_whose_window_has_run_out_looks_once_and_never_past_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """After an unknown create, the look-ups stop once the next pause would end past the window:
    with no window left, one look-up that finds nothing says nothing was made."""
    monkeypatch.setattr(create, "REATTACH_SECONDS", 0.0)
    looked: list[int] = []

    def find() -> str | None:
        looked.append(1)
        if len(looked) > 1:
            raise AssertionError("looked again after the window")
        return None

    unknown = TransportError(ErrorDetail(None, "ConnectionError", "the answer was lost", None), transient=True)
    assert create.look_up(find, unknown, "Look for it by hand.") is None
    assert len(looked) == 1


def test_look_ups_pause_a_quarter_second_doubling_to_eight_within_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """After an unknown create, the look-ups back off 0.25 s doubling up to 8 s, and stop once the
    next pause would end past the 30 s window: eight look-ups, on a clock the test moves."""
    now = [100.0]
    pauses: list[float] = []

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return now[0]

        @staticmethod
        def sleep(seconds: float) -> None:
            pauses.append(seconds)
            now[0] += seconds

    monkeypatch.setattr(create, "time", Clock)
    looked: list[float] = []

    def find() -> str | None:
        looked.append(now[0])
        return None

    unknown = TransportError(ErrorDetail(None, "ConnectionError", "the answer was lost", None), transient=True)
    assert create.look_up(find, unknown, "Look for it by hand.") is None
    assert pauses == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(looked) == 8 and looked[-1] - looked[0] == 23.75
