"""Azure OpenAI Batch Job end to end against the emulator's batch lifecycle (spec §4).

The platforms speak the v1 API (the default), whose batch lines use the `/v1` url form; the
dated API's batches, and the RunIds 0.1.0 issued for them, have their own section.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pluggy
import pytest
import trustme

from polysync_azure_openai.cli.host import Job, Platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator.faults import DropFields, HtmlPage, MalformedJson, Status
from polysync_azure_openai.http import data_plane
from polysync_azure_openai.jobs import BATCH
from polysync_azure_openai.jobs.batch_api import BatchApi
from polysync_azure_openai.platform import PlatformConfig

from ..conftest import job, sp_platform

V010_OUTPUT_KEYS = {
    "output_file_id",
    "error_file_id",
    "request_counts_total",
    "request_counts_completed",
    "request_counts_failed",
}
# second-release §G adds these to every batch run, null until the run has ended.
ROW_OUTPUT_KEYS = {
    "results",
    "succeeded_count",
    "failed_count",
    "content_filtered_count",
    "missing_count",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "output_file_ids",
    "error_file_ids",
}
OUTPUT_KEYS = V010_OUTPUT_KEYS | ROW_OUTPUT_KEYS


def jsonl(n: int, *, model: str = "gpt-4o-batch", url: str = "/v1/chat/completions", bad_lines: tuple[int, ...] = ()) -> str:
    lines = []
    for i in range(n):
        prompt = "EMULATOR_BLOCK" if i in bad_lines else f"Question {i}?"
        lines.append(
            json.dumps(
                {
                    "custom_id": f"task-{i}",
                    "method": "POST",
                    "url": url,
                    "body": {"model": model, "messages": [{"role": "user", "content": prompt}]},
                }
            )
        )
    return "\n".join(lines) + "\n"


def batch_job(**attributes: str) -> Job:
    return job(BATCH, "gpt-4o-batch::batch", **attributes)


def submit(pm: pluggy.PluginManager, platform: Platform, file_id: str, run_key: str = "run-1", **attributes: str):
    return pm.hook.submit(platform=platform, job=batch_job(**attributes), parameters={"input_file_id": file_id}, run_key=run_key)


def status(pm: pluggy.PluginManager, platform: Platform, run_id: str):
    return pm.hook.get_status(platform=platform, job=batch_job(), run_id=run_id)


def test_a_batch_through_every_running_state_to_success(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    file_id = emu.add_file(jsonl(300, bad_lines=(7,)))
    submitted = submit(pm, platform, file_id)
    assert submitted.status == "Running" and submitted.run_id.startswith("batch_")
    assert set(submitted.outputs) == OUTPUT_KEYS
    assert submitted.outputs["output_file_id"] is None and submitted.outputs["error_file_id"] is None
    assert isinstance(submitted.started_at, datetime) and submitted.ended_at is None
    assert f"Batch {submitted.run_id} is validating: request counts not reported yet." in submitted.message
    seen = set()
    for _ in range(200):
        emu.advance(1)
        result = status(pm, platform, submitted.run_id)
        assert set(result.outputs) == OUTPUT_KEYS
        assert result.started_at == submitted.started_at
        azure_status = emu.batch(submitted.run_id)["status"]
        seen.add(azure_status)
        if azure_status == "in_progress":
            assert result.status == "Running" and " of 300 requests done" in result.message
        if result.status != "Running":
            break
    assert {"in_progress", "finalizing", "completed"} <= seen
    assert result.status == "Success"
    out = result.outputs
    assert (out["request_counts_total"], out["request_counts_completed"], out["request_counts_failed"]) == (300, 299, 1)
    assert f"Batch {submitted.run_id} completed: 300 of 300 requests done, 1 failed" in result.message
    assert out["output_file_id"].startswith("file-") and out["error_file_id"].startswith("file-")
    assert result.ended_at is not None and result.ended_at >= result.started_at
    output_lines = [json.loads(line) for line in emu.file_content(out["output_file_id"]).decode().splitlines()]
    assert len(output_lines) == 299
    error_lines = [json.loads(line) for line in emu.file_content(out["error_file_id"]).decode().splitlines()]
    assert [e["custom_id"] for e in error_lines] == ["task-7"]
    # A run from a file gets its rows joined too, in the file's order.
    assert [row["custom_id"] for row in out["results"]] == [f"task-{i}" for i in range(300)]
    assert (out["succeeded_count"], out["content_filtered_count"], out["failed_count"], out["missing_count"]) == (299, 1, 0, 0)
    assert out["results"][7]["error"]["code"] == "content_filter" and out["results"][7]["response"] is None
    assert out["output_file_ids"] == [out["output_file_id"]] and out["error_file_ids"] == [out["error_file_id"]]
    assert out["total_tokens"] == sum(line["response"]["body"]["usage"]["total_tokens"] for line in output_lines)


def test_suffix_never_reaches_a_request_path(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    submitted = submit(pm, platform, emu.add_file(jsonl(2)))
    status(pm, platform, submitted.run_id)
    pm.hook.cancel(platform=platform, job=batch_job(), run_id=submitted.run_id)
    paths = [r.path + json.dumps(r.query) for r in emu.requests]
    assert paths and not any("::batch" in p or "%3A%3Abatch" in p for p in paths)
    data_plane = [r for r in emu.requests if r.kind.startswith(("batches.", "files."))]
    assert all(r.path.startswith("/openai/v1/") and "api-version" not in r.query for r in data_plane)
    created = [json.loads(r.body) for r in emu.requests if r.kind == "batches.create"]
    assert created == [
        {
            "input_file_id": created[0]["input_file_id"],
            "endpoint": "/v1/chat/completions",  # the job attribute says /chat/completions: the v1 form goes
            "completion_window": "24h",
            "metadata": {"polysync_run_key": "run-1"},
        }
    ]


def test_input_file_attribute_and_parameter_override(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    from_attribute = emu.add_file(jsonl(1))
    from_parameter = emu.add_file(jsonl(1))
    r1 = pm.hook.submit(platform=platform, job=batch_job(OpenAI_Input_File_ID=from_attribute), parameters={}, run_key="a")
    r2 = pm.hook.submit(
        platform=platform,
        job=batch_job(OpenAI_Input_File_ID=from_attribute),
        parameters={"input_file_id": from_parameter},
        run_key="b",
    )
    assert emu.batch(r1.run_id)["input_file_id"] == from_attribute
    assert emu.batch(r2.run_id)["input_file_id"] == from_parameter


def test_embeddings_batch_endpoint(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    lines = "\n".join(
        json.dumps(
            {
                "custom_id": f"e{i}",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "embed-small", "input": f"text {i}"},
            }
        )
        for i in range(3)
    )
    result = submit(pm, platform, emu.add_file(lines), OpenAI_Batch_Endpoint="/embeddings")
    assert result.status == "Running"
    emu.advance(3600)
    done = status(pm, platform, result.run_id)
    assert done.status == "Success" and done.outputs["request_counts_completed"] == 3


def test_failed_validation_is_failed_with_the_line(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    bad = (
        jsonl(3)
        + json.dumps(
            {
                "custom_id": "task-0",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-batch", "messages": []},
            }
        )
        + "\n"
    )
    submitted = submit(pm, platform, emu.add_file(bad))
    emu.advance(3600)
    result = status(pm, platform, submitted.run_id)
    assert result.status == "Failed"
    assert "duplicate_custom_id" in result.message and "line 4" in result.message
    assert result.ended_at is not None


def test_expired_is_failed_with_partial_output_and_the_raw_errors(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.batch_timing.requests_per_second = 0.001  # far too slow for the 24 h window
    platform = sp_platform(emu)
    submitted = submit(pm, platform, emu.add_file(jsonl(500)))
    emu.advance(25 * 3600)
    result = status(pm, platform, submitted.run_id)
    assert result.status == "Failed"
    assert "expired" in result.message and "24h" in result.message
    raw = emu.batch(submitted.run_id)["errors"]
    assert json.dumps(raw)[:40] in result.message
    assert result.outputs["request_counts_completed"] > 0 and result.outputs["output_file_id"]
    assert result.ended_at is not None


def test_cancel_in_each_state(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    # validating
    r = submit(pm, platform, emu.add_file(jsonl(50)), run_key="c1")
    cancelled = pm.hook.cancel(platform=platform, job=batch_job(), run_id=r.run_id)
    assert cancelled.status == "Running" and "cancelling" in cancelled.message
    assert [x.kind for x in emu.requests].count("batches.cancel") == 1
    emu.advance(3600)
    final = status(pm, platform, r.run_id)
    assert final.status == "Cancelled" and final.ended_at is not None
    # in progress, with partial output kept
    r = submit(pm, platform, emu.add_file(jsonl(1000)), run_key="c2")
    emu.advance(3)
    assert emu.batch(r.run_id)["status"] == "in_progress"
    assert pm.hook.cancel(platform=platform, job=batch_job(), run_id=r.run_id).status == "Running"
    emu.advance(3600)
    final = status(pm, platform, r.run_id)
    assert final.status == "Cancelled" and final.outputs["request_counts_completed"] > 0
    # already ended: no cancel request, the terminal state is reported
    emu.clear_requests()
    again = pm.hook.cancel(platform=platform, job=batch_job(), run_id=r.run_id)
    assert again.status == "Cancelled" and "already ended" in again.message
    assert "batches.cancel" not in [x.kind for x in emu.requests]
    r = submit(pm, platform, emu.add_file(jsonl(2)), run_key="c3")
    emu.advance(3600)
    done = pm.hook.cancel(platform=platform, job=batch_job(), run_id=r.run_id)
    assert done.status == "Success" and "batches.cancel" not in [x.kind for x in emu.requests]


def test_same_run_key_twice_gives_one_batch(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    file_id = emu.add_file(jsonl(5))
    first = submit(pm, platform, file_id, run_key="host-run-77")
    second = submit(pm, platform, file_id, run_key="host-run-77")
    assert first.run_id == second.run_id
    assert [r.kind for r in emu.requests].count("batches.create") == 1
    other = submit(pm, platform, file_id, run_key="host-run-78")
    assert other.run_id != first.run_id


def test_lost_create_response_gives_one_batch(pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    platform = sp_platform(emu)
    file_id = emu.add_file(jsonl(5))
    emu.lose_next_batch_create(newer_batches=150)  # the scan has to page past them
    with caplog.at_level(logging.WARNING):
        result = submit(pm, platform, file_id, run_key="lost-answer")
    # The operator's warning names the operation whose outcome is unknown, as a sentence.
    assert any(
        m.startswith("Creating the batch: ") and m.endswith("; looking for it before creating again") for m in caplog.messages
    )
    assert result.status == "Running"
    mine = [b for b in (emu.batch(i) for i in emu.batches) if (b.get("metadata") or {}).get("polysync_run_key") == "lost-answer"]
    assert [b["id"] for b in mine] == [result.run_id]
    assert [r.kind for r in emu.requests].count("batches.create") == 1
    lists = [r for r in emu.requests if r.kind == "batches.list"]
    assert "after" not in lists[0].query  # the first page is asked from the start, with no empty cursor
    assert any("after" in r.query for r in lists)  # it paged
    # and the host's re-submit lands on the same batch
    assert submit(pm, platform, file_id, run_key="lost-answer").run_id == result.run_id


def test_a_create_answered_with_broken_json_is_found_and_the_warning_says_what_broke(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Azure made the batch but its answer does not parse: the look-up finds it, and the operator's
    warning names the create and what was wrong with the answer."""
    emu.inject(MalformedJson(), kind="batches.create")
    with caplog.at_level(logging.WARNING):
        result = submit(pm, sp_platform(emu), emu.add_file(jsonl(2)), run_key="broken-answer")
    assert result.status == "Running", result.message
    assert [r.kind for r in emu.requests].count("batches.create") == 1
    assert any("HTTP 200 MalformedJSON: Creating the batch: the body is not valid JSON" in m for m in caplog.messages), (
        caplog.messages
    )


def test_a_lost_create_is_found_past_the_first_page_when_the_list_has_no_last_id(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """Without a top-level last_id (Azure's REST example puts it inside an item), the look-up pages
    on from the page's last batch, finds the lost create and creates nothing twice."""
    file_id = emu.add_file(jsonl(2))
    emu.lose_next_batch_create(newer_batches=150)
    emu.inject(DropFields("last_id"), kind="batches.list", times=None)
    result = submit(pm, sp_platform(emu), file_id, run_key="lost-answer")
    assert result.status == "Running", result.message
    assert [r.kind for r in emu.requests].count("batches.create") == 1
    assert any("after" in r.query for r in emu.requests if r.kind == "batches.list")


def test_the_run_key_look_up_walks_at_most_its_limit_of_batches(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The walk stops after `limit` batches, however many more Azure lists (spec §4: at most 1,000)."""
    platform = sp_platform(emu)
    file_id = emu.add_file(jsonl(1))
    for key in ("a", "b", "c", "d"):
        submit(pm, platform, file_id, run_key=key)
    config = PlatformConfig.from_host(platform)
    found = list(BatchApi(data_plane(config), config).scan({}, 0, 2))
    assert [b.run_key for b in found] == ["d", "c"]


def test_the_run_key_look_up_takes_a_batch_created_at_the_very_second_its_window_opens(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    """The window holds the batches not older than its start (spec §4): one created at that very
    second is found; one created the second before it is not, and the walk ends there."""
    platform = sp_platform(emu)
    file_id = emu.add_file(jsonl(1))
    older = submit(pm, platform, file_id, run_key="k").run_id
    emu.advance(1)
    newer = submit(pm, platform, file_id, run_key="k2").run_id
    start = emu.batch(newer)["created_at"]
    assert emu.batch(older)["created_at"] == start - 1
    config = PlatformConfig.from_host(platform)
    api = BatchApi(data_plane(config), config)
    assert [b.id for b in api.scan({}, float(start), 10)] == [newer]
    assert [b.id for b in api.scan({}, float(start - 1), 10)] == [newer, older]


def test_a_batch_answer_without_a_status_is_unknown_and_says_so(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    submitted = submit(pm, platform, emu.add_file(jsonl(1)))
    emu.inject(DropFields("status"), kind="batches.get")
    result = status(pm, platform, submitted.run_id)
    assert result.status == "Unknown" and result.ended_at is None
    assert f"Batch {submitted.run_id} has a status this plugin does not know: ''; polling continues." in result.message


def test_a_file_runs_json_answers_are_parsed_where_its_lines_asked_for_json(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """A 0.1.0 run from a file: a line whose body asks for a JSON answer gets it parsed, the others not."""
    systems = [{"role": "system", "content": "Answer in JSON."}, None]
    content = ""
    for i, system in enumerate(systems):
        body: dict = {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": f"Question {i}?"}]}
        if system is not None:
            body["messages"].insert(0, system)
            body["response_format"] = {"type": "json_object"}
        content += json.dumps({"custom_id": f"task-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
    platform = sp_platform(emu)
    submitted = submit(pm, platform, emu.add_file(content))
    emu.advance(24 * 3600)
    done = status(pm, platform, submitted.run_id)
    assert done.status == "Success", done.message
    asked, plain = done.outputs["results"]
    assert asked["status"] == "succeeded" and asked["response_json"] == json.loads(asked["response"])
    assert plain["status"] == "succeeded" and plain["response_json"] is None


def test_unknown_file_is_failed_before_any_batch(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    result = submit(pm, platform, "file-doesnotexist")
    assert result.status == "Failed"
    assert result.run_id == "gpt-4o-batch#batch#Failed"
    assert "file-doesnotexist" in result.message and "does not exist" in result.message and "upload" in result.message
    assert "batches.create" not in [r.kind for r in emu.requests]
    later = status(pm, platform, result.run_id)
    assert later.status == "Failed"


def test_file_with_wrong_purpose_or_in_error(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    wrong_purpose = emu.add_file(jsonl(1), purpose="fine-tune")
    result = submit(pm, platform, wrong_purpose)
    assert result.status == "Failed" and "purpose 'fine-tune'" in result.message
    broken = emu.add_file("\ufeffnot json\n")
    result = submit(pm, platform, broken, run_key="r2")
    assert result.status == "Failed" and "failed Azure's processing" in result.message
    assert "batches.create" not in [r.kind for r in emu.requests]


def test_status_of_a_vanished_batch_is_failed(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = status(pm, sp_platform(emu), "batch_does-not-exist")
    assert result.status == "Failed" and "404" in result.message


def test_monitor_url_for_batch(pm: pluggy.PluginManager, emu: Emulator) -> None:
    url = pm.hook.monitor_url(platform=sp_platform(emu), job=batch_job(), run_id="batch_abc")
    assert url.endswith(f"/accounts/{emu.resource_name}/overview")
    assert emu.requests == []


@pytest.mark.parametrize("attribute", ["Deployment Name"])
def test_deployment_name_override_is_used_for_the_failed_run_id(pm: pluggy.PluginManager, emu: Emulator, attribute: str) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu),
        job=batch_job(**{attribute.replace(" ", "_"): "other-dep"}),
        parameters={"input_file_id": "file-missing"},
        run_key="k",
    )
    assert result.run_id == "other-dep#batch#Failed"


# The dated API (0.1.0's surface) and the RunIds 0.1.0 issued.
DATED = "2024-10-21"


def test_a_dated_batch_with_dated_lines_runs_on_the_dated_paths(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu, OpenAI_API_Version=DATED)
    submitted = submit(pm, platform, emu.add_file(jsonl(3, url="/chat/completions")))
    assert submitted.status == "Running"
    emu.advance(3600)
    done = status(pm, platform, submitted.run_id)
    assert done.status == "Success" and done.outputs["request_counts_completed"] == 3
    data_plane = [r for r in emu.requests if r.kind.startswith(("batches.", "files."))]
    assert data_plane and all(r.path.startswith(("/openai/batches", "/openai/files")) for r in data_plane)
    assert all(r.query.get("api-version") == DATED for r in data_plane)
    [created] = [json.loads(r.body) for r in emu.requests if r.kind == "batches.create"]
    assert created["endpoint"] == "/chat/completions"


def test_a_v1_batch_endpoint_attribute_on_a_dated_platform_is_sent_in_the_dated_form(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    platform = sp_platform(emu, OpenAI_API_Version=DATED)
    submitted = submit(
        pm, platform, emu.add_file(jsonl(1, url="/chat/completions")), OpenAI_Batch_Endpoint="/v1/chat/completions"
    )
    assert submitted.status == "Running"
    assert emu.batch(submitted.run_id)["endpoint"] == "/chat/completions"


def test_a_batch_0_1_0_created_still_polls_and_cancels_on_a_v1_platform(pm: pluggy.PluginManager, emu: Emulator) -> None:
    # 0.1.0 created it on the dated API; the platform has since moved to the new default, v1.
    old = submit(pm, sp_platform(emu, OpenAI_API_Version=DATED), emu.add_file(jsonl(300, url="/chat/completions")))
    emu.clear_requests()
    v1_platform = sp_platform(emu, OpenAI_API_Version=None)
    emu.advance(2)
    running = status(pm, v1_platform, old.run_id)
    assert running.status == "Running" and "in_progress" in running.message
    cancelling = pm.hook.cancel(platform=v1_platform, job=batch_job(), run_id=old.run_id)
    assert cancelling.status == "Running"
    emu.advance(60)
    assert status(pm, v1_platform, old.run_id).status == "Cancelled"
    assert {r.path.split(old.run_id)[0] for r in emu.requests if r.kind.startswith("batches.")} == {"/openai/v1/batches/"}
    failed_run_id = "gpt-4o-batch#batch#Failed"  # 0.1.0's RunId of a submit that created nothing
    assert status(pm, v1_platform, failed_run_id).status == "Failed"


def test_dated_lines_on_a_v1_platform_fail_with_the_url_to_use(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    submitted = submit(pm, platform, emu.add_file(jsonl(2, url="/chat/completions")))
    emu.advance(3600)
    result = status(pm, platform, submitted.run_id)
    assert result.status == "Failed" and "url_mismatch" in result.message
    assert "Fix: every input line's url must be the batch endpoint '/v1/chat/completions'" in result.message


def test_a_400_on_create_is_a_failed_run_with_azures_error(pm: pluggy.PluginManager, emu: Emulator) -> None:
    # "48h" has the shape the plugin accepts; only Azure knows it serves 24h alone.
    platform = sp_platform(emu)
    result = submit(pm, platform, emu.add_file(jsonl(2)), OpenAI_Completion_Window="48h")
    assert result.status == "Failed"
    assert result.run_id == "gpt-4o-batch#batch#Failed"
    assert "HTTP 400" in result.message and "invalidPayload" in result.message
    assert "The completion window '48h' is not supported" in result.message
    assert result.started_at is not None and result.ended_at is not None
    assert result.outputs == dict.fromkeys(OUTPUT_KEYS)  # every output, null: Azure has nothing to report
    # A 400 means nothing was created: neither sent again nor looked up afterwards.
    kinds = [r.kind for r in emu.requests]
    assert kinds.count("batches.create") == 1 and kinds[-1] == "batches.create"
    assert emu.batches == []
    later = status(pm, platform, result.run_id)
    assert later.status == "Failed" and later.outputs == dict.fromkeys(OUTPUT_KEYS)
    assert later.ended_at is None  # a later read does not know when the run ended: it does not claim "now"


def test_a_deployment_azure_does_not_know_is_named_in_the_failed_submit(pm: pluggy.PluginManager, emu: Emulator) -> None:
    body = {
        "error": {
            "code": "DeploymentNotFound",
            "message": "The API deployment for this resource does not exist. If you created the deployment "
            "within the last 5 minutes, please wait a moment and try again.",
        }
    }
    emu.inject(Status(404, body=body), kind="batches.create")
    result = submit(pm, sp_platform(emu), emu.add_file(jsonl(2)))
    assert result.status == "Failed" and "HTTP 404" in result.message and "DeploymentNotFound" in result.message
    assert "deployment 'gpt-4o-batch' does not exist on this resource" in result.message


# -- the run_key look-up looks back 48 hours ------------------------------------------------------

HOUR = 3600


@pytest.fixture
def history(ca: trustme.CA) -> Iterator[Emulator]:
    """An emulator whose clock starts 49 hours ago: what a test creates first is that old."""
    with Emulator(ca=ca, clock_start=time.time() - 49 * HOUR) as emulator:
        yield emulator


def creates(emu: Emulator) -> int:
    return [r.kind for r in emu.requests].count("batches.create")


def test_a_resubmit_49_hours_later_starts_a_new_batch(pm: pluggy.PluginManager, history: Emulator) -> None:
    platform = sp_platform(history)
    file_id = history.add_file(jsonl(2))
    old = submit(pm, platform, file_id, run_key="run-of-two-days-ago")
    history.advance(HOUR / 2)
    submit(pm, platform, file_id, run_key="another-run")  # 48.5 h old by the re-submit: past the window
    history.advance(48 * HOUR)  # the emulator's clock back at real time
    again = submit(pm, platform, file_id, run_key="run-of-two-days-ago")
    assert again.status == "Running" and again.run_id != old.run_id
    assert creates(history) == 3


def test_a_lone_batch_49_hours_old_is_not_reattached(pm: pluggy.PluginManager, history: Emulator) -> None:
    platform = sp_platform(history)
    file_id = history.add_file(jsonl(2))
    old = submit(pm, platform, file_id, run_key="run-of-two-days-ago")
    history.advance(49 * HOUR)
    again = submit(pm, platform, file_id, run_key="run-of-two-days-ago")
    assert again.run_id != old.run_id
    assert creates(history) == 2


def test_a_resubmit_47_hours_later_finds_its_batch(pm: pluggy.PluginManager, history: Emulator) -> None:
    platform = sp_platform(history)
    file_id = history.add_file(jsonl(2))
    history.advance(2 * HOUR)
    first = submit(pm, platform, file_id, run_key="run-of-yesterday")
    history.advance(HOUR / 2)
    submit(pm, platform, file_id, run_key="another-run")
    history.advance(47 * HOUR)
    again = submit(pm, platform, file_id, run_key="run-of-yesterday")
    assert again.run_id == first.run_id
    assert creates(history) == 2


# -- an input file still pending -----------------------------------------------------------------


def test_submit_waits_for_a_pending_input_file_before_creating(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.file_processing_seconds = 60
    file_id = emu.add_file(jsonl(2))
    assert emu.file(file_id)["status"] == "pending"
    seen_pending = threading.Event()

    def process_after_the_first_read() -> None:
        # Azure finishes processing while the plugin waits: its first read saw "pending".
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(r.kind == "files.get" for r in emu.requests):
                seen_pending.set()
                emu.advance(60)
                return
            time.sleep(0.01)

    worker = threading.Thread(target=process_after_the_first_read)
    worker.start()
    result = submit(pm, sp_platform(emu), file_id)
    worker.join()
    assert seen_pending.is_set()
    assert result.status == "Running", result.message
    kinds = [r.kind for r in emu.requests if r.kind in ("files.get", "batches.create")]
    assert kinds.count("files.get") >= 2 and kinds[-1] == "batches.create" and kinds.count("batches.create") == 1
    assert emu.batch(result.run_id)["input_file_id"] == file_id


@pytest.mark.parametrize("status", [429, 503])
def test_an_entra_outage_while_a_batch_runs_keeps_polling(pm: pluggy.PluginManager, emu: Emulator, status: int) -> None:
    """A transient token failure says nothing about the batch: the run is Unknown, never Failed."""
    # A timeout no other test uses: a fresh credential, so the token request really happens.
    platform = sp_platform(emu, Max_Retries="0", Request_Timeout_Seconds="31.5")
    emu.inject(Status(status), kind="entra.token", times=None)
    result = pm.hook.get_status(platform=platform, job=job(BATCH, "gpt-4o::batch"), run_id="batch_still_running")
    assert result.status == "Unknown", result.message
    assert f"HTTP {status}" in result.message and "Entra ID is throttling or unavailable" in result.message
    assert "polling continues" in result.message


def _behind_an_entra_outage_page(emu: Emulator, monkeypatch: pytest.MonkeyPatch, **attributes: str) -> Platform:
    """A Workload Identity platform (no keyless variables from the environment) whose every
    token request gets an HTML 503 page."""
    from polysync_azure_openai.identity import MANAGED_IDENTITY_VARIABLES

    from ..test_keyless_auth import wi_platform

    for name in MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    platform = wi_platform(emu, emu.write_federated_token(), **attributes)
    emu.inject(HtmlPage(503), kind="entra.token", times=None)
    return platform


def test_an_entra_outage_page_while_a_workload_identity_batch_runs_keeps_polling(
    pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """azure-identity keeps neither the status nor the page's content type here: the page alone tells an outage."""
    platform = _behind_an_entra_outage_page(emu, monkeypatch, Max_Retries="0", Request_Timeout_Seconds="31.25")
    result = pm.hook.get_status(platform=platform, job=job(BATCH, "gpt-4o::batch"), run_id="batch_still_running")
    message = result.message or ""
    assert result.status == "Unknown", message
    assert "did not answer with JSON" in message and "polling continues" in message
    assert "<html" not in message.lower() and "Application-Gateway" not in message


def test_a_submit_during_an_entra_outage_page_fails_once_max_retries_is_spent(
    pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transient for polling, yet nothing was created: the submit ends Failed, never retrying past Max Retries."""
    platform = _behind_an_entra_outage_page(emu, monkeypatch, Max_Retries="1", Request_Timeout_Seconds="31.125")
    result = submit(pm, platform, emu.add_file(jsonl(1)))
    message = result.message or ""
    assert result.status == "Failed", message
    assert "NonJsonTokenAnswer" in message and "did not answer with JSON" in message and "<html" not in message.lower()
    assert len([r for r in emu.requests if r.kind == "entra.token"]) == 2
    assert creates(emu) == 0
