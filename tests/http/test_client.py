"""HttpClient.send against the emulator: headers, the session, and the loop's use of decide."""

from __future__ import annotations

import logging

import pluggy
import pytest

from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator import faults as f
from polysync_azure_openai.jobs import CHAT

from ..conftest import job, sp_platform


def chat(pm: pluggy.PluginManager, emu: Emulator, **platform: str):
    return pm.hook.submit(
        platform=sp_platform(emu, **platform), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"
    )


def test_every_request_has_user_agent_and_a_fresh_client_request_id(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    pm.hook.import_jobs(platform=platform)
    for _ in range(3):
        pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    azure = [r for r in emu.requests if r.kind in ("arm.deployments", "chat")]
    assert len(azure) == 4
    assert all(r.headers["user-agent"].startswith("polysync-azure-openai/0.1.0 ") for r in azure)
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


def test_the_resend_after_a_401_is_no_retry(pm: pluggy.PluginManager, emu: Emulator) -> None:
    assert chat(pm, emu).status == "Success"
    emu.revoke_tokens()
    emu.inject(f.Status(401), kind="chat", times=1)
    assert chat(pm, emu, Max_Retries="0").status == "Success"
    assert sum(1 for r in emu.requests if r.kind == "chat") == 3


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
