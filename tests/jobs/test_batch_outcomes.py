"""What a Batch Job run tells the host when it fails, cannot start or is cancelled (spec §4).

Against the emulator through the real hooks; a few shapes the emulator never produces (a short
error list, an error without code, message or line) are parsed from wire JSON by ``Batch.from_json``,
the one place batch answers become objects.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import attrs
import pluggy
import pytest

from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator import faults as f
from polysync_azure_openai.emulator.server import Exchange
from polysync_azure_openai.jobs.batch_api import Batch

from ..conftest import sp_platform
from .test_batch import batch_job, jsonl, status, submit


def summary(message: str, batch_id: str) -> list[str]:
    """The errors a failed batch's message lists, in order."""
    head = f"Batch {batch_id} failed: "
    assert message.startswith(head), message
    listed = message[len(head) :].split(". Fix: ")[0]
    return listed.split("; ")


def test_a_batch_failing_validation_lists_five_errors_with_their_lines_and_counts_the_rest(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    platform = sp_platform(emu)
    # Past file processing (the status is fixed), so that the batch's own validation finds them.
    bad = "".join("{not json\n" for _ in range(7))
    submitted = submit(pm, platform, emu.add_file(bad, status="processed"))
    emu.advance(3600)
    result = status(pm, platform, submitted.run_id)
    assert result.status == "Failed"
    assert summary(result.message, submitted.run_id) == [
        *(f"invalid_json_line: Line {n} is not valid JSON. (line {n})" for n in range(1, 6)),
        "and 2 more",
    ]


def test_an_error_without_a_line_is_listed_without_one(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    submitted = submit(pm, platform, emu.add_file(b"", status="processed"))
    emu.advance(3600)
    result = status(pm, platform, submitted.run_id)
    assert result.status == "Failed"
    [only] = summary(result.message, submitted.run_id)
    assert only.startswith("empty_file: The input file is empty.") and "(line" not in only, only


def failed_batch(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "batch_abc", "object": "batch", "status": "failed", "errors": {"object": "list", "data": errors}}


@pytest.mark.parametrize(
    ("errors", "listed"),
    [
        ([{"code": "c", "message": "m", "line": n} for n in range(1, 6)], [f"c: m (line {n})" for n in range(1, 6)]),
        (
            [{"code": "c", "message": "m", "line": n} for n in range(1, 7)],
            [*(f"c: m (line {n})" for n in range(1, 6)), "and 1 more"],
        ),
        ([{"message": "no code given", "line": 3}], ["error: no code given (line 3)"]),
        ([{"code": "no_message"}], ["no_message:"]),
        ([{"code": "c", "message": "m", "line": ""}], ["c: m"]),
        ([{"code": "c", "message": "m", "line": 0}], ["c: m (line 0)"]),
    ],
    ids=["five", "six", "no-code", "no-message", "empty-line", "line-0"],
)
def test_the_error_list_of_a_failed_batch(errors: list[dict[str, Any]], listed: list[str]) -> None:
    result = Batch.from_json(failed_batch(errors)).to_result()
    assert summary(result.message or "", "batch_abc") == listed


def test_a_failed_submit_has_its_start_and_end_and_no_output_values(pm: pluggy.PluginManager, emu: Emulator) -> None:
    file_id = emu.add_file(jsonl(1), purpose="fine-tune")
    result = submit(pm, sp_platform(emu), file_id)
    assert (result.status, result.run_id) == ("Failed", "gpt-4o-batch#batch#Failed")
    assert "purpose 'fine-tune'" in result.message
    assert "output_file_id" in result.outputs and set(result.outputs.values()) == {None}  # every key, no value
    assert result.started_at is not None and result.ended_at is not None and result.started_at <= result.ended_at


@pytest.mark.parametrize("hook", ["get_status", "cancel"])
def test_a_batch_that_was_never_created_is_failed_locally(pm: pluggy.PluginManager, emu: Emulator, hook: str) -> None:
    run_id = "gpt-4o-batch#batch#Failed"
    result = getattr(pm.hook, hook)(platform=sp_platform(emu), job=batch_job(), run_id=run_id)
    assert (result.run_id, result.status) == (run_id, "Failed")
    assert "output_file_id" in result.outputs and set(result.outputs.values()) == {None}  # every key, no value
    assert "never created" in result.message
    assert emu.requests == []


@attrs.frozen
class AnotherBatchsAnswer:
    """The real answer with another batch's id in it (a misrouted or mixed-up answer)."""

    name = "another_batch"

    def apply(self, exchange: Exchange) -> None:
        response = exchange.respond()
        payload = json.loads(response.body)
        payload["id"] = "batch_someone_else"
        exchange.send(attrs.evolve(response, body=json.dumps(payload).encode()))


def test_a_cancel_answered_for_another_batch_is_not_taken_for_this_one(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    submitted = submit(pm, platform, emu.add_file(jsonl(50)))
    emu.inject(AnotherBatchsAnswer(), kind="batches.cancel")
    result = pm.hook.cancel(platform=platform, job=batch_job(), run_id=submitted.run_id)
    assert result.run_id == submitted.run_id and result.status == "Unknown", result
    assert "batch_someone_else" in result.message and "polling continues" in result.message


def test_a_cancel_whose_answer_is_cut_names_the_cancel(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu, Max_Retries="0")
    submitted = submit(pm, platform, emu.add_file(jsonl(50)))
    emu.inject(f.MalformedJson(), kind="batches.cancel")
    result = pm.hook.cancel(platform=platform, job=batch_job(), run_id=submitted.run_id)
    assert result.status == "Unknown", result
    # The unreadable answer is named as the cancel's.
    assert f"Cancelling batch {submitted.run_id}: the body is not valid JSON" in result.message, result.message
    assert emu.batch(submitted.run_id)["status"] == "cancelling"  # Azure did cancel it


@attrs.define
class FailsTheSecond:
    """The first matching request is answered as usual, the later ones it is given (the second, with ``times=2``) get a 503."""

    seen: int = 0
    name = "fails_the_second"

    def apply(self, exchange: Exchange) -> None:
        self.seen += 1
        if self.seen == 1:
            exchange.send(exchange.respond())
        else:
            f.Status(503).apply(exchange)


def test_a_lost_create_is_found_even_when_the_first_look_up_fails(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # The create's answer is lost; the look-up after it fails too. Nobody knows yet whether the
    # batch exists: the look-up asks again (Azure's list may also lag), finds it, and re-attaches.
    platform = sp_platform(emu, Max_Retries="0")
    file_id = emu.add_file(jsonl(3))
    emu.inject(f.ResetBeforeResponse(handled=True), kind="batches.create")
    emu.inject(FailsTheSecond(), kind="batches.list", times=2)  # the submit's own look-up passes
    result = submit(pm, platform, file_id, run_key="lost")
    assert result.status == "Running", result.message
    assert [r.status for r in emu.requests if r.kind == "batches.list"] == [200, 503, 200]
    assert [r.kind for r in emu.requests].count("batches.create") == 1
    # The operator sees the failed look-up, with Azure's status, before the next one finds the batch.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("The look-up failed: HTTP 503") for m in warnings), warnings


@pytest.mark.parametrize("value", ["", 42, {"id": "file-1"}], ids=["empty", "number", "object"])
def test_an_id_azure_gives_as_no_text_is_read_as_absent(value: Any) -> None:
    """A file id, window, endpoint or run marker that is empty or not a string is no value: never "" or 42."""
    payload = {
        "id": "batch_abc",
        "status": "completed",
        "input_file_id": value,
        "output_file_id": value,
        "error_file_id": value,
        "completion_window": value,
        "endpoint": value,
        "metadata": {"polysync_run_key": value, "polysync_shard": value},
    }
    batch = Batch.from_json(payload)
    read = (batch.input_file_id, batch.output_file_id, batch.error_file_id, batch.completion_window, batch.endpoint)
    assert read == (None,) * 5
    assert (batch.run_key, batch.shard) == (None, None)


#: An expired batch's raw errors, whose JSON passes the 1,000 characters the message keeps.
LONG_ERRORS = {"object": "list", "data": [{"code": "batch_expired", "message": "é" * 1200}]}
LONG_ERRORS_HEAD = '{"object": "list", "data": [{"code": "batch_expired", "message": "'


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"status": "failed", "errors": {"object": "list", "data": []}},
            "Batch batch_abc failed: Azure gave no error detail. Fix: fix the input file (see the errors above) and upload it again.",
        ),
        (
            {"status": "expired", "output_file_id": "file-out", "errors": LONG_ERRORS},
            "Batch batch_abc expired before it finished (completion window unknown): 4 of 10 requests done, 0 failed "
            f"(output file file-out). Azure's errors: {LONG_ERRORS_HEAD}{'é' * (1000 - len(LONG_ERRORS_HEAD))}",
        ),
        ({"status": "cancelled"}, "Batch batch_abc was cancelled: 4 of 10 requests done, 0 failed."),
    ],
    ids=["failed-without-errors", "expired-without-window", "cancelled"],
)
def test_the_message_of_a_batch_that_ended_without_every_answer(payload: dict[str, Any], message: str) -> None:
    """No error detail and no window are said to be missing; the counts with none failed are exact;
    Azure's raw errors are cut to their first 1,000 characters (characters, not bytes or escapes)."""
    counts = {"total": 10, "completed": 4, "failed": 0}
    result = Batch.from_json({"id": "batch_abc", "request_counts": counts, **payload}).to_result()
    assert result.message == message


@pytest.mark.parametrize("status", ["validating", "in_progress", "finalizing", "cancelling", "completed", "cancelled"])
def test_only_a_batch_that_has_ended_has_an_end_time(status: str) -> None:
    """An end time in the answer of a batch still running (a stale or reordered field) is not its end."""
    payload = {"id": "batch_abc", "status": status, "created_at": 1_700_000_000}
    payload |= {field: 1_700_000_600 for field in ("completed_at", "failed_at", "expired_at", "cancelled_at")}
    result = Batch.from_json(payload).to_result()
    ended = status in ("completed", "cancelled")
    assert result.ended_at == (datetime.fromtimestamp(1_700_000_600, UTC) if ended else None)
    assert result.started_at == datetime.fromtimestamp(1_700_000_000, UTC)


def test_an_input_file_in_error_without_details_says_azure_gave_none(pm: pluggy.PluginManager, emu: Emulator) -> None:
    file_id = emu.add_file(jsonl(1), status="error")
    emu.inject(f.DropFields("status_details"), kind="files.get", times=None)
    result = submit(pm, sp_platform(emu), file_id)
    assert result.status == "Failed"
    assert (
        f"input file {file_id} failed Azure's processing: no detail given. Fix the JSONL and upload it again." in result.message
    ), result.message
    assert "batches.create" not in [r.kind for r in emu.requests]


@pytest.mark.usefixtures("one_look_up")
def test_a_create_that_never_reached_azure_is_sent_again_once_the_look_up_finds_nothing(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    """The connection drops before Azure handled the create: the look-up finds no batch, so the
    create is sent once more (one retry allowed), and the run has exactly that one batch."""
    platform = sp_platform(emu, Max_Retries="1")
    file_id = emu.add_file(jsonl(3))
    emu.inject(f.ResetBeforeResponse(handled=False), kind="batches.create")
    result = submit(pm, platform, file_id, run_key="never-sent")
    assert result.status == "Running", result.message
    assert [r.kind for r in emu.requests].count("batches.create") == 2
    assert emu.batches == [result.run_id]


def test_a_batch_answer_without_an_id_is_named_as_having_an_empty_one(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """Azure's answer to the status read lacks the batch's id: the run is not taken for another
    batch, and the operator reads that the id was empty (not some made-up value)."""
    platform = sp_platform(emu, Max_Retries="0")
    submitted = submit(pm, platform, emu.add_file(jsonl(5)))
    emu.inject(f.DropFields("id"), kind="batches.get")
    result = status(pm, platform, submitted.run_id)
    assert (result.run_id, result.status) == (submitted.run_id, "Unknown")
    assert result.message == (
        f"Reading the status of run {submitted.run_id} failed: UnexpectedResponse: the batch answer carries "
        "an unusable id ''. The batch may still be running on Azure; polling continues."
    )
