"""Transient faults, timeouts and broken answers, injected into the emulator per test (issue 5).

Waits come from the emulator's retry headers in milliseconds, so the suite stays fast.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pluggy
import pytest

from polysync_azure_openai.emulator import Emulator, RecordingServer
from polysync_azure_openai.emulator import faults as f
from polysync_azure_openai.errors import TransportError
from polysync_azure_openai.jobs import BATCH, CHAT, EMBEDDING

from .conftest import imported, job, sp_platform

FAST = {"retry-after-ms": "5"}


def chat(pm: pluggy.PluginManager, emu: Emulator, **platform: str):
    return pm.hook.submit(
        platform=sp_platform(emu, **platform), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"
    )


def kinds(emu: Emulator, kind: str) -> int:
    return sum(1 for r in emu.requests if r.kind == kind)


# -- retried and recovered ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        f.throttled(retry_after_ms=5),
        f.throttled(x_ms_retry_after_ms=5),
        f.throttled(retry_after=0),
        f.throttled(retry_after=datetime.now(UTC) - timedelta(seconds=5)),  # an HTTP date already past
        f.Status(408, headers=FAST),
        f.Status(500, headers=FAST),
        f.Status(502, headers=FAST),
        f.Status(503, headers=FAST),
        f.Status(504, headers=FAST),
        f.HtmlPage(502),
    ],
    ids=[
        "429-retry-after-ms",
        "429-x-ms-retry-after-ms",
        "429-retry-after-s",
        "429-retry-after-date",
        "408",
        "500",
        "502",
        "503",
        "504",
        "502-html",
    ],
)
def test_transient_statuses_are_retried(pm: pluggy.PluginManager, emu: Emulator, fault, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="polysync_azure_openai")
    emu.inject(fault, kind="chat", times=2)
    result = chat(pm, emu)
    assert result.status == "Success", result.message
    assert kinds(emu, "chat") == 3
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 2
    assert all("HTTP" in m and "/openai/v1/chat/completions" in m and "attempt" in m for m in retries)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if isinstance(fault, f.Throttled):
        # A 429 pauses the deployment's lane: one WARNING per pause, from the lane.
        assert len(warnings) == 2 and all(m.startswith("Deployment 'gpt-4o' at ") and "HTTP 429" in m for m in warnings)
    else:
        assert warnings == retries


def test_retries_run_out_with_the_last_error_and_the_attempt_count(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.throttled(retry_after_ms=5), kind="chat", times=None)
    result = chat(pm, emu, Max_Retries="2")
    assert result.status == "Failed"
    assert kinds(emu, "chat") == 3
    message = result.message
    assert "HTTP 429" in message and "exceeded token rate limit" in message
    assert "request id" in message and "after 3 attempts" in message and "quota" in message


def test_max_retries_zero_disables_retries(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.Status(503, headers=FAST), kind="chat", times=None)
    assert chat(pm, emu, Max_Retries="0").status == "Failed"
    assert kinds(emu, "chat") == 1


@pytest.mark.parametrize("code", [400, 404])
def test_definite_errors_are_not_retried(pm: pluggy.PluginManager, emu: Emulator, code: int) -> None:
    emu.inject(f.Status(code), kind="chat", times=None)
    assert chat(pm, emu).status == "Failed"
    assert kinds(emu, "chat") == 1


def test_content_filter_is_never_retried(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.ContentFilter(), kind="chat", times=None)
    result = chat(pm, emu)
    assert result.status == "Failed" and "content_filter" in result.message
    assert kinds(emu, "chat") == 1


def test_arm_listing_is_retried(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.throttled(retry_after_ms=5), kind="arm.deployments", times=2)
    assert len(imported(pm, sp_platform(emu))) == 7


def test_a_401_once_renews_the_token_and_resends(pm: pluggy.PluginManager, emu: Emulator) -> None:
    assert chat(pm, emu).status == "Success"
    emu.revoke_tokens()
    emu.inject(f.Status(401), kind="chat", times=1)
    assert chat(pm, emu).status == "Success"
    assert emu.token_requests() == 2


def test_a_401_every_time_is_resent_only_once(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.Status(401), kind="chat", times=None)
    result = chat(pm, emu)
    assert result.status == "Failed" and "HTTP 401" in result.message and "Azure Cloud" in result.message
    assert kinds(emu, "chat") == 2


# -- connections ----------------------------------------------------------------------------------


def test_stale_keep_alive_connection_is_replaced(pm: pluggy.PluginManager, emu: Emulator) -> None:
    assert chat(pm, emu).status == "Success"
    assert emu.close_idle_connections() >= 1
    assert chat(pm, emu).status == "Success"
    chats = [r for r in emu.requests if r.kind == "chat"]
    assert len(chats) == 2 and chats[0].connection_id != chats[1].connection_id


@pytest.mark.parametrize("fault", [f.ResetBeforeBody(), f.ResetBeforeResponse()], ids=["before-body", "after-request"])
def test_a_dropped_connection_is_resent_once_on_a_fresh_one(pm: pluggy.PluginManager, emu: Emulator, fault) -> None:
    # before-body: the reset races the body's write, so the client sees an SSLEOFError while
    # sending or a reset/EOF while reading; every one of them is "maybe processed" (§A).
    dropped = emu.inject(fault, kind="chat", times=1)
    result = chat(pm, emu)
    assert result.status == "Success", result.message
    assert dropped.hits == 1
    chats = [r for r in emu.requests if r.kind == "chat"]
    assert [r.fault for r in chats] == [fault.name, None]
    assert chats[0].connection_id != chats[1].connection_id


# Issue 11 defect 1: about 3 MB of body, so the reset lands while it is still being written and
# the client sees ssl.SSLEOFError from sendall (0.1.0 called that "TLS handshake failed").
BIG_PROMPT = "€" * 1_000_000


def test_a_stream_cut_while_the_body_is_written_is_sent_again(pm: pluggy.PluginManager, emu: Emulator) -> None:
    cut = emu.inject(f.ResetBeforeBody(), kind="chat", times=1)
    result = pm.hook.submit(
        platform=sp_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": BIG_PROMPT}, run_key="k"
    )
    assert result.status == "Success", result.message
    assert cut.hits == 1 and kinds(emu, "chat") == 2


def test_a_stream_cut_while_the_body_is_written_is_no_tls_failure(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.ResetBeforeBody(), kind="chat", times=1)
    result = pm.hook.submit(
        platform=sp_platform(emu, Max_Retries="0"), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": BIG_PROMPT}, run_key="k"
    )
    assert result.status == "Failed" and "connection was closed" in result.message, result.message
    assert "handshake" not in result.message and "REQUESTS_CA_BUNDLE" not in result.message
    assert kinds(emu, "chat") == 1


@pytest.mark.parametrize("max_retries,sent", [("0", 1), ("2", 3)])
def test_a_lost_chat_answer_is_sent_again_within_max_retries(
    pm: pluggy.PluginManager, emu: Emulator, max_retries: str, sent: int
) -> None:
    lost = emu.inject(f.ResetBeforeResponse(), kind="chat", times=None)
    result = chat(pm, emu, Max_Retries=max_retries)
    assert result.status == "Failed" and "connection was closed" in result.message, result.message
    assert lost.hits == sent == kinds(emu, "chat")
    # The failure counts the attempts it took, as a status failure does.
    assert (f"after {sent} attempts" in result.message) == (sent > 1), result.message


def test_reads_are_retried_after_a_lost_answer(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    line = json.dumps(
        {
            "custom_id": "t",
            "method": "POST",
            "url": "/chat/completions",
            "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "hi"}]},
        }
    )
    run = pm.hook.submit(
        platform=platform, job=job(BATCH, "gpt-4o-batch::batch"), parameters={"input_file_id": emu.add_file(line)}, run_key="k"
    )
    emu.inject(f.ResetBeforeResponse(), kind="batches.get", times=3)
    assert pm.hook.get_status(platform=platform, job=job(BATCH, "gpt-4o-batch::batch"), run_id=run.run_id).status == "Running"


def test_connection_refused_is_a_failed_run_naming_the_host(pm: pluggy.PluginManager, emu: Emulator) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = chat(pm, emu, OpenAI_Endpoint=f"https://127.0.0.1:{port}", Max_Retries="1")
    assert result.status == "Failed" and f"127.0.0.1:{port}" in result.message and "cannot connect" in result.message


# -- timeouts: a hung server never hangs a hook past attempts x timeout ------------------------


# The faults hold each answer back 30 s; the timeouts below fail a test that waits for them.


@pytest.mark.timeout(20)
def test_hung_data_plane(pm: pluggy.PluginManager, emu: Emulator) -> None:
    hung = emu.inject(f.Delay(30), kind="chat", times=None)
    result = chat(pm, emu, Request_Timeout_Seconds="0.3", Max_Retries="2")
    assert result.status == "Failed" and "ReadTimeout" in result.message and "Request Timeout Seconds" in result.message
    assert hung.hits == 3  # a chat call is sent again after a read timeout, within Max Retries (§A)


@pytest.mark.timeout(20)
def test_hung_body_on_a_read_is_retried_then_unknown(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu, Request_Timeout_Seconds="0.3", Max_Retries="2")
    hung = emu.inject(f.StallBody(30), kind="batches.get", times=None)
    result = pm.hook.get_status(platform=platform, job=job(BATCH, "gpt-4o-batch::batch"), run_id="batch_abc")
    assert result.status == "Unknown" and "polling continues" in result.message
    assert hung.hits == 3


@pytest.mark.timeout(20)
def test_hung_resource_manager(pm: pluggy.PluginManager, emu: Emulator) -> None:
    hung = emu.inject(f.Delay(30), kind="arm.deployments", times=None)
    with pytest.raises(TransportError, match="ReadTimeout"):
        imported(pm, sp_platform(emu, Request_Timeout_Seconds="0.3", Max_Retries="1"))
    assert hung.hits == 2


@pytest.mark.timeout(25)
def test_hung_authority(pm: pluggy.PluginManager, emu: Emulator) -> None:
    hung = emu.inject(f.Delay(30), kind="entra.token", times=None)
    result = chat(pm, emu, Request_Timeout_Seconds="0.3", Max_Retries="1")
    assert result.status == "Failed" and "token" in result.message.lower()
    assert hung.hits >= 1
    assert kinds(emu, "chat") == 0


# -- hostile or broken answers: Failed with a clear message, never an exception or a hang ------


@pytest.mark.parametrize(
    "fault,expected",
    [
        (f.MalformedJson(), "not valid JSON"),
        (f.TruncatedBody(), "cut short"),
        (f.HtmlPage(200), "expected JSON but got text/html"),
        (f.ContentType("text/plain"), "expected JSON but got text/plain"),
        (f.ContentType(""), "expected JSON but got no content type"),
        # An answer without what the run needs: Azure's 200, the UnexpectedResponse code, the gap.
        (f.DropFields(("choices",)), "HTTP 200 UnexpectedResponse: the answer (HTTP 200) has no choices (request id "),
        (f.DropFields(("usage",)), "HTTP 200 UnexpectedResponse: the answer (HTTP 200) has no usage (request id "),
    ],
    ids=["malformed-json", "truncated", "html-200", "text-plain", "no-content-type", "no-choices", "no-usage"],
)
def test_broken_chat_answers_are_failed_runs(pm: pluggy.PluginManager, emu: Emulator, fault, expected: str) -> None:
    emu.inject(fault, kind="chat", times=None)
    result = chat(pm, emu, Max_Retries="1")
    assert result.status == "Failed"
    assert expected in result.message and "request id" in result.message


def test_broken_embedding_answer(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.DropFields(("data",)), kind="embeddings", times=None)
    result = pm.hook.submit(platform=sp_platform(emu), job=job(EMBEDDING, "embed-small"), parameters={"input": "x"}, run_key="k")
    assert result.status == "Failed" and "has no data" in result.message


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_redirects_are_never_followed(pm: pluggy.PluginManager, emu: Emulator, code: int) -> None:
    with RecordingServer(ca=emu.ca) as elsewhere:
        emu.inject(f.Redirect(elsewhere.url + "/steal", status=code), kind="chat", times=None)
        result = chat(pm, emu)
        assert result.status == "Failed"
        assert f"HTTP {code}" in result.message and "never followed" in result.message
        assert elsewhere.requests == []


def test_unknown_batch_status_is_unknown_with_the_raw_status(pm: pluggy.PluginManager, emu: Emulator) -> None:
    body = {
        "id": "batch_abc",
        "object": "batch",
        "status": "paused",
        "input_file_id": "file-x",
        "request_counts": {"total": 1, "completed": 0, "failed": 0},
    }
    emu.inject(f.Status(200, body=body), kind="batches.get", times=1)
    result = pm.hook.get_status(platform=sp_platform(emu), job=job(BATCH, "gpt-4o-batch::batch"), run_id="batch_abc")
    assert result.status == "Unknown" and "'paused'" in result.message


@pytest.mark.parametrize("fault", [f.Status(503, headers=FAST), f.Status(401), f.Status(403)], ids=["503", "401", "403"])
def test_status_reads_of_runs_in_flight_report_unknown(pm: pluggy.PluginManager, emu: Emulator, fault) -> None:
    emu.inject(fault, kind="batches.get", times=None)
    result = pm.hook.get_status(platform=sp_platform(emu), job=job(BATCH, "gpt-4o-batch::batch"), run_id="batch_abc")
    assert result.status == "Unknown" and "polling continues" in result.message


def test_cancel_of_a_run_in_flight_reports_unknown_on_outage(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.Status(503, headers=FAST), kind="batches.get", times=None)
    result = pm.hook.cancel(platform=sp_platform(emu), job=job(BATCH, "gpt-4o-batch::batch"), run_id="batch_abc")
    assert result.status == "Unknown"


def test_emulator_faults_leave_the_plugin_usable(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.TruncatedBody(), kind="chat", times=1)
    assert chat(pm, emu, Max_Retries="0").status == "Failed"
    assert chat(pm, emu).status == "Success"


# -- batch create (§A: a create is never repeated blindly, and never lost) ---------------------


def batch_submit(pm: pluggy.PluginManager, emu: Emulator, run_key: str, **platform: str):
    line = json.dumps(
        {
            "custom_id": "t",
            "method": "POST",
            "url": "/chat/completions",
            "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "hi"}]},
        }
    )
    return pm.hook.submit(
        platform=sp_platform(emu, **platform),
        job=job(BATCH, "gpt-4o-batch::batch"),
        parameters={"input_file_id": emu.add_file(line)},
        run_key=run_key,
    )


def batches_of(emu: Emulator, run_key: str) -> list[str]:
    return [i for i in emu.batches if (emu.batch(i).get("metadata") or {}).get("polysync_run_key") == run_key]


@pytest.mark.parametrize(
    "fault", [f.Status(503, headers=FAST, handled=True), f.ResetBeforeResponse(handled=True)], ids=["503", "answer-lost"]
)
def test_a_batch_created_without_an_answer_is_found_with_max_retries_zero(pm: pluggy.PluginManager, emu: Emulator, fault) -> None:
    """Issue 11 defect 2: 0.1.0 returned {d}#batch#Failed while the batch ran on Azure."""
    emu.inject(fault, kind="batches.create", times=1)
    result = batch_submit(pm, emu, "billed", Max_Retries="0")
    assert result.status == "Running", result.message
    assert batches_of(emu, "billed") == [result.run_id]
    assert kinds(emu, "batches.create") == 1


def test_a_batch_created_on_the_last_attempt_is_found(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.throttled(retry_after_ms=5), kind="batches.create", times=1)
    emu.inject(f.Status(503, headers=FAST, handled=True), kind="batches.create", times=1)
    result = batch_submit(pm, emu, "last", Max_Retries="1")
    assert result.status == "Running", result.message
    assert batches_of(emu, "last") == [result.run_id]
    assert kinds(emu, "batches.create") == 2


def test_a_throttled_batch_create_waits_as_asked_and_is_sent_again(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11 defect 3: a 429 created nothing; 0.1.0 spent about 25 s looking for the batch."""
    caplog.set_level(logging.WARNING, logger="polysync_azure_openai")
    emu.inject(f.throttled(retry_after_ms=5), kind="batches.create", times=2)
    result = batch_submit(pm, emu, "throttled")
    assert result.status == "Running", result.message
    assert batches_of(emu, "throttled") == [result.run_id]
    assert kinds(emu, "batches.create") == 3
    assert kinds(emu, "batches.list") == 1  # the look-up every submit starts with, no other
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 2 and all("HTTP 429" in m and "retrying in 0.01 s" in m for m in retries)


def test_a_batch_create_throttled_past_max_retries_fails_without_a_batch(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.throttled(retry_after_ms=5), kind="batches.create", times=None)
    result = batch_submit(pm, emu, "refused", Max_Retries="1")
    assert result.status == "Failed" and "HTTP 429" in result.message, result.message
    assert result.run_id == "gpt-4o-batch#batch#Failed"
    assert kinds(emu, "batches.create") == 2 and kinds(emu, "batches.list") == 1
    assert batches_of(emu, "refused") == []
