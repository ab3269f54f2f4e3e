"""Batch from data (second-release §G) through the hooks, against the emulator over TLS:
rows in, sharded past the limits, patient with quota, rows out."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pluggy
import pytest
import requests

from polysync_azure_openai.auth import redactor_for
from polysync_azure_openai.cli.host import Job, Platform, plugin_manager
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator import faults as f
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.files import FilesApi
from polysync_azure_openai.jobs import BATCH, run_ids
from polysync_azure_openai.jobs.batch_results import JoinPlan, ShardFiles, write_jsonl
from polysync_azure_openai.platform import PlatformConfig

from ..conftest import job, sp_platform
from .test_batch import OUTPUT_KEYS
from .test_batch_outcomes import FailsTheSecond

PROMPT_TOKENS = 2  # "Question N?" is two words to the emulator's tokenizer


def rows_job(**attributes: str) -> Job:
    return job(BATCH, "gpt-4o-batch::batch", **attributes)


def prompts(count: int) -> list[str]:
    return [f"Question {i}?" for i in range(count)]


def submit(pm: pluggy.PluginManager, platform: Platform, requests: Any, run_key: str = "run-1", **attributes: str) -> Any:
    return pm.hook.submit(platform=platform, job=rows_job(**attributes), parameters={"requests": requests}, run_key=run_key)


def status(pm: pluggy.PluginManager, platform: Platform, run_id: str, **attributes: str) -> Any:
    return pm.hook.get_status(platform=platform, job=rows_job(**attributes), run_id=run_id)


def until_ended(
    pm: pluggy.PluginManager, emu: Emulator, platform: Platform, run_id: str, step: float = 10, **attributes: str
) -> Any:
    for _ in range(500):
        emu.advance(step)
        result = status(pm, platform, run_id, **attributes)
        assert result.status in ("Running", "Success", "Failed", "Cancelled"), result.message
        if result.is_terminal:
            return result
    raise AssertionError(f"the run did not end: {result.message}")


def file_prefix(run_key: str) -> str:
    return f"polysync-{hashlib.sha256(run_key.encode()).hexdigest()[:32]}-"


def run_batches(emu: Emulator, run_key: str) -> list[dict[str, Any]]:
    found = [emu.batch(i) for i in emu.batches]
    return [b for b in found if (b.get("metadata") or {}).get("polysync_run_key") == run_key]


def run_files(emu: Emulator, run_key: str) -> list[dict[str, Any]]:
    prefix = file_prefix(run_key)
    return [f for f in emu.file_listing() if f["filename"].startswith(prefix)]


def test_rows_in_rows_out_in_input_order(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    requests = [
        "Question 0?",
        {"user_prompt": "Question 1?", "custom_id": "mine", "max_tokens": 3},
        {"user_prompt": "Please EMULATOR_BLOCK this", "system_prompt": "Be kind."},
        {"user_prompt": "EMULATOR_FILTER_OUTPUT now"},
        {"body": {"messages": [{"role": "user", "content": "Question 4?"}], "max_tokens": "three"}},  # Azure refuses it
        {"user_prompt": "Give JSON", "response_format": "json_object"},
    ]
    submitted = submit(pm, platform, requests, OpenAI_System_Prompt="Answer briefly.", OpenAI_Temperature="0.5")
    assert submitted.status == "Running"
    assert set(submitted.outputs) == OUTPUT_KEYS and submitted.outputs["results"] is None
    decoded = run_ids.decode_batch(submitted.run_id, BATCH)
    assert isinstance(decoded, run_ids.RowsRunId) and decoded.counts == (6,) and decoded.plan == "cm"
    (line_file,) = run_files(emu, "run-1")
    assert line_file["filename"] == file_prefix("run-1") + "1.jsonl"
    lines = [json.loads(x) for x in emu.file_content(line_file["id"]).decode().splitlines()]
    assert [x["custom_id"] for x in lines] == ["row-0", "mine", "row-2", "row-3", "row-4", "row-5"]
    # The v1 API (the default): its line urls carry /v1, as the batch's endpoint does.
    assert {x["url"] for x in lines} == {"/v1/chat/completions"} and {x["body"]["model"] for x in lines} == {"gpt-4o-batch"}
    assert lines[0]["body"] == {
        "messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Question 0?"}],
        "temperature": 0.5,
        "model": "gpt-4o-batch",
    }
    assert lines[1]["body"]["max_tokens"] == 3
    assert lines[2]["body"]["messages"][0] == {"role": "system", "content": "Be kind."}
    assert lines[5]["body"]["response_format"] == {"type": "json_object"}
    (batch,) = run_batches(emu, "run-1")
    assert batch["metadata"] == {"polysync_run_key": "run-1", "polysync_shard": "1/1"}

    done = until_ended(pm, emu, platform, submitted.run_id)
    assert done.status == "Success" and set(done.outputs) == OUTPUT_KEYS
    out = done.outputs
    results = out["results"]
    assert [r["custom_id"] for r in results] == ["row-0", "mine", "row-2", "row-3", "row-4", "row-5"]
    assert [r["status"] for r in results] == [
        "succeeded",
        "succeeded",
        "content_filtered",
        "content_filtered",
        "failed",
        "succeeded",
    ]
    assert results[0]["response"].startswith("Emulated answer") and results[0]["finish_reason"] == "stop"
    assert results[1]["finish_reason"] == "length"
    assert results[2]["error"]["code"] == "content_filter" and results[2]["usage"] is None
    assert results[3]["finish_reason"] == "content_filter" and results[3]["usage"]["total_tokens"] > 0
    assert results[4]["error"]["code"] == "invalid_type" and results[4]["response"] is None
    assert results[5]["status"] == "succeeded" and isinstance(results[5]["response_json"], dict)
    assert results[0]["response_json"] is None  # no JSON format asked for that row
    assert (out["succeeded_count"], out["failed_count"], out["content_filtered_count"], out["missing_count"]) == (3, 1, 2, 0)
    assert out["total_tokens"] == sum((r["usage"] or {}).get("total_tokens", 0) for r in results)
    assert out["prompt_tokens"] + out["completion_tokens"] == out["total_tokens"]
    assert out["output_file_ids"] == [batch_now(emu, batch["id"])["output_file_id"]]
    assert out["output_file_id"] == out["output_file_ids"][0]  # one shard: the 0.1.0 outputs name its files
    assert (
        out["error_file_ids"] == [batch_now(emu, batch["id"])["error_file_id"]]
        and out["error_file_id"] == out["error_file_ids"][0]
    )
    assert (out["request_counts_total"], out["request_counts_completed"], out["request_counts_failed"]) == (6, 4, 2)
    assert "6 of 6 requests done, 2 failed, in 1 shard: 1 completed." in done.message
    assert f"Rows: 3 succeeded, 1 failed, 2 content filtered, 0 missing; {out['total_tokens']:,} tokens." in done.message
    # Later reads return identical outputs.
    assert status(pm, platform, submitted.run_id).outputs == out


def batch_now(emu: Emulator, batch_id: str) -> dict[str, Any]:
    return emu.batch(batch_id)


def test_json_answers_are_parsed_when_a_json_format_was_asked(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["city", "year"],
        "additionalProperties": False,  # strict structured output takes only closed objects
    }
    requests = ["Question 0?", {"user_prompt": "Question 1?", "max_tokens": 2}, {"user_prompt": "Q2", "response_format": schema}]
    json_mode = {"OpenAI_Response_Format": "json_object", "OpenAI_System_Prompt": "Answer in JSON."}
    submitted = submit(pm, platform, requests, **json_mode)
    assert run_ids.decode_batch(submitted.run_id, BATCH).plan == "dj"  # type: ignore[union-attr]
    done = until_ended(pm, emu, platform, submitted.run_id, **json_mode)
    first, cut, typed = done.outputs["results"]
    assert first["status"] == "succeeded" and first["response_json"] == json.loads(first["response"])
    # An answer the token limit cut short is not JSON: the row failed, its raw text kept.
    assert cut["status"] == "failed" and cut["error"]["code"] == "invalid_json" and cut["finish_reason"] == "length"
    assert cut["response"] and cut["response_json"] is None
    assert set(typed["response_json"]) == {"city", "year"}


def test_each_items_response_format_form_is_sent_as_azure_takes_it(pm: pluggy.PluginManager, emu: Emulator) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False}
    strict = {"type": "json_schema", "json_schema": {"name": "result", "schema": schema, "strict": True}}
    forms: list[tuple[Any, dict[str, Any] | None]] = [
        ("text", None),  # text: no response_format at all
        ("", None),
        ("json_object", {"type": "json_object"}),
        (json.dumps(schema), strict),  # the attribute's form: a schema as JSON object text
        (schema, strict),
    ]
    requests = [{"user_prompt": f"Answer {i} in JSON.", "response_format": form} for i, (form, _) in enumerate(forms)]
    assert submit(pm, sp_platform(emu), requests).status == "Running"
    (line_file,) = run_files(emu, "run-1")
    lines = [json.loads(x) for x in emu.file_content(line_file["id"]).decode().splitlines()]
    assert [line["body"].get("response_format") for line in lines] == [sent for _, sent in forms]


def test_embeddings_rows(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    embedding = {"OpenAI_Batch_Endpoint": "/embeddings", "Deployment_Name": "embed-small"}
    submitted = submit(pm, platform, ["first text", {"input": "second text", "custom_id": "b"}], **embedding)
    done = until_ended(pm, emu, platform, submitted.run_id, **embedding)
    results = done.outputs["results"]
    assert [r["custom_id"] for r in results] == ["row-0", "b"]
    assert all(len(r["embedding"]) == emu.embedding_dimensions and "response_json" not in r for r in results)
    assert done.outputs["completion_tokens"] == 0 and done.outputs["prompt_tokens"] == done.outputs["total_tokens"] > 0


def test_sharded_past_max_requests_per_batch(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    submitted = submit(pm, platform, prompts(1000), OpenAI_Max_Requests_Per_Batch="300")
    decoded = run_ids.decode_batch(submitted.run_id, BATCH)
    assert isinstance(decoded, run_ids.RowsRunId) and decoded.counts == (300, 300, 300, 100) and decoded.plan == "dn"
    assert sorted(f["filename"] for f in run_files(emu, "run-1")) == [file_prefix("run-1") + f"{i}.jsonl" for i in range(1, 5)]
    shards = sorted(b["metadata"]["polysync_shard"] for b in run_batches(emu, "run-1"))
    assert shards == ["1/4", "2/4", "3/4", "4/4"]
    assert "1,000 requests" in submitted.message and "4 shards" in submitted.message
    done = until_ended(pm, emu, platform, submitted.run_id, OpenAI_Max_Requests_Per_Batch="300")
    assert done.status == "Success"
    assert [r["custom_id"] for r in done.outputs["results"]] == [f"row-{i}" for i in range(1000)]
    assert all(r["response"].endswith(f"Question {i}?") for i, r in enumerate(done.outputs["results"]))
    assert len(done.outputs["output_file_ids"]) == 4 and done.outputs["output_file_id"] is None


def test_lost_answers_on_every_upload_and_create_give_one_file_and_one_batch_per_shard(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    platform = sp_platform(emu)
    emu.lose_next_upload(times=4)
    emu.lose_next_batch_create(newer_batches=3, times=4)
    submitted = submit(pm, platform, prompts(1000), run_key="lossy", OpenAI_Max_Requests_Per_Batch="300")
    assert submitted.status == "Running", submitted.message
    kinds = [r.kind for r in emu.requests]
    assert kinds.count("files.upload") == 4 and kinds.count("batches.create") == 4
    assert len(run_files(emu, "lossy")) == 4
    assert sorted(b["metadata"]["polysync_shard"] for b in run_batches(emu, "lossy")) == ["1/4", "2/4", "3/4", "4/4"]
    # The host's re-submit after a lost answer lands on the same run: nothing is uploaded or created.
    emu.clear_requests()
    again = submit(pm, platform, prompts(1000), run_key="lossy", OpenAI_Max_Requests_Per_Batch="300")
    assert again.run_id == submitted.run_id
    assert not {"files.upload", "batches.create"} & {r.kind for r in emu.requests}
    assert until_ended(pm, emu, platform, submitted.run_id).status == "Success"


@pytest.mark.usefixtures("one_look_up")
def test_a_lost_shard_create_whose_look_up_fails_names_every_metadata_pair_to_look_for(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    """Shard 1's create loses its answer and the look-up after it fails: the run stays Running and
    tells the operator both metadata pairs that find the batch by hand; the next read finds it."""
    platform = sp_platform(emu, Max_Retries="0")
    emu.lose_next_batch_create()
    emu.inject(FailsTheSecond(), kind="batches.list", times=None)  # the submit's own look-up passes
    submitted = submit(pm, platform, prompts(2), OpenAI_Max_Requests_Per_Batch="1")
    assert submitted.status == "Running", submitted.message
    assert "it may have been created, and looking for it failed too (HTTP 503" in submitted.message
    assert (
        "A re-submit with the same run_key finds it; otherwise look for metadata "
        "polysync_run_key='run-1', polysync_shard='1/2' on the resource." in submitted.message
    )
    emu.clear_faults()
    assert until_ended(pm, emu, platform, submitted.run_id).status == "Success"
    assert sorted(b["metadata"]["polysync_shard"] for b in run_batches(emu, "run-1")) == ["1/2", "2/2"]


def test_a_quota_refusal_in_validation_waits_and_resolves(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    emu.set_batch_token_quota("gpt-4o-batch", 3 * 300 * PROMPT_TOKENS)  # three shards fit
    submitted = submit(pm, platform, prompts(1000), OpenAI_Max_Requests_Per_Batch="250")
    emu.advance(2)  # every shard validated: the fourth does not fit
    waiting = status(pm, platform, submitted.run_id)
    assert waiting.status == "Running"
    assert "waits for the enqueued-token quota" in waiting.message and "token_limit_exceeded" in waiting.message
    # The counts lead, then each label's shards, then the waiting shard's note.
    assert " requests done, 0 failed, in 4 shards: 3 in flight, 1 waiting for quota. Shard 4 waits for" in waiting.message
    assert waiting.message.startswith(f"{waiting.outputs['request_counts_completed']:,} of 1,000 requests done")
    refused = [b for b in run_batches(emu, "run-1") if b["status"] == "failed"]
    assert [b["errors"]["data"][0]["code"] for b in refused] == ["token_limit_exceeded"]
    # Only the first sentence of Azure's words: the rest repeats the limits.
    assert waiting.message.endswith(
        " Shard 4 waits for the enqueued-token quota (token_limit_exceeded: Enqueued token limit reached for "
        f"gpt-4o-batch in model gpt-4o-2024-08-06. (batch {refused[0]['id']}); refused 1 time(s)): it is created "
        "again when another shard finishes or 5 minutes after the refusal."
    ), waiting.message
    assert status(pm, platform, submitted.run_id).status == "Running"  # nothing has finished: no new attempt
    assert len(run_batches(emu, "run-1")) == 4
    done = until_ended(pm, emu, platform, submitted.run_id)
    assert done.status == "Success" and done.outputs["succeeded_count"] == 1000
    assert len(run_batches(emu, "run-1")) == 5  # the refused shard was created once more


def test_waiting_shards_are_tried_again_one_at_a_time(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    emu.set_batch_token_quota("gpt-4o-batch", 100 * PROMPT_TOKENS)  # one shard at a time
    submitted = submit(pm, platform, prompts(400), OpenAI_Max_Requests_Per_Batch="100")
    done = until_ended(pm, emu, platform, submitted.run_id)
    assert done.status == "Success" and done.outputs["succeeded_count"] == 400
    attempts: dict[str, int] = {}
    for batch in run_batches(emu, "run-1"):
        attempts[batch["metadata"]["polysync_shard"]] = attempts.get(batch["metadata"]["polysync_shard"], 0) + 1
    # Refused once in validation each, then tried again in turn as the quota freed: never refused twice.
    assert attempts == {"1/4": 1, "2/4": 2, "3/4": 2, "4/4": 2}


def test_no_waiting_shard_is_tried_while_another_shard_s_new_attempt_validates(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """Shard 1 finishes, so shards 2 and 3 may both be tried again: shard 2 is, and while its batch
    validates a poll does not try shard 3 too (the quota shard 2 finds decides for shard 3)."""
    platform = sp_platform(emu)
    emu.set_batch_token_quota("gpt-4o-batch", 100 * PROMPT_TOKENS)  # one shard at a time
    submitted = submit(pm, platform, prompts(300), OpenAI_Max_Requests_Per_Batch="100")
    emu.advance(2)  # validated: shard 1 runs, shards 2 and 3 are refused
    assert status(pm, platform, submitted.run_id).status == "Running"
    emu.batch_timing.validating_seconds = 600
    emu.advance(300)  # shard 1 has finished
    assert status(pm, platform, submitted.run_id).status == "Running"
    shards = [b["metadata"]["polysync_shard"] for b in run_batches(emu, "run-1")]
    assert sorted(shards) == ["1/3", "2/3", "2/3", "3/3"]
    validating = [b for b in run_batches(emu, "run-1") if b["status"] == "validating"]
    assert [b["metadata"]["polysync_shard"] for b in validating] == ["2/3"]
    emu.advance(1)
    assert status(pm, platform, submitted.run_id).status == "Running"
    assert len(run_batches(emu, "run-1")) == 4  # shard 3 still waits


def test_a_fail_fast_quota_refusal_is_recorded_and_resolves(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    emu.set_batch_token_quota("gpt-4o-batch", 300 * PROMPT_TOKENS, fail_fast=True)
    submitted = submit(pm, platform, prompts(600), OpenAI_Max_Requests_Per_Batch="300")
    assert submitted.status == "Running" and "token_limit_exceeded" in submitted.message
    markers = [f["filename"] for f in run_files(emu, "run-1") if "refused" in f["filename"]]
    assert markers == [file_prefix("run-1") + "2-refused-1.jsonl"]
    [marker] = [f for f in run_files(emu, "run-1") if "refused" in f["filename"]]
    # The marker keeps Azure's words on the refusal.
    words = json.loads(emu.file_content(marker["id"]))["body"]["messages"][0]["content"]
    assert words.startswith("token_limit_exceeded: Enqueued token limit reached")
    done = until_ended(pm, emu, platform, submitted.run_id)
    assert done.status == "Success" and done.outputs["succeeded_count"] == 600


def test_a_quota_refusal_with_nothing_in_flight_fails_the_run(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    emu.set_batch_token_quota("gpt-4o-batch", 10)  # not even one shard fits
    submitted = submit(pm, platform, prompts(20))
    emu.advance(2)
    failed = status(pm, platform, submitted.run_id)
    assert failed.status == "Failed"
    assert "Shard 1 of 1 was refused while nothing else of the run was in flight for the deployment's" in failed.message
    assert "Enqueued token limit reached" in failed.message and "OpenAI Max Requests Per Batch" in failed.message
    assert failed.outputs["missing_count"] == 20 and len(failed.outputs["results"]) == 20
    emu.advance(3600)
    assert status(pm, platform, submitted.run_id).outputs == failed.outputs
    assert len(run_batches(emu, "run-1")) == 1  # never tried again


def test_five_refusals_fail_the_run_once_the_shards_in_flight_end(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    emu.batch_timing.requests_per_second = 0.05  # shard 1 runs for 10,000 s
    emu.set_batch_token_quota("gpt-4o-batch", 500 * PROMPT_TOKENS)
    submitted = submit(pm, platform, prompts(1000), OpenAI_Max_Requests_Per_Batch="500")
    for _ in range(6):
        emu.advance(301)
        result = status(pm, platform, submitted.run_id)
        assert result.status == "Running"
    assert len([b for b in run_batches(emu, "run-1") if b["metadata"]["polysync_shard"] == "2/2"]) == 5
    assert "was refused 5 times" in result.message
    assert " No further shard is created; the run fails once the shards in flight have ended." in result.message
    emu.batch_timing.requests_per_second = 100
    done = until_ended(pm, emu, platform, submitted.run_id)
    assert done.status == "Failed"
    assert done.outputs["succeeded_count"] == 500 and done.outputs["missing_count"] == 500


def test_cancel_while_a_shard_waits_for_quota_then_no_shard_is_ever_created(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    emu.set_batch_token_quota("gpt-4o-batch", 300 * PROMPT_TOKENS, fail_fast=True)
    submitted = submit(pm, platform, prompts(900), OpenAI_Max_Requests_Per_Batch="300")
    assert "token_limit_exceeded" in submitted.message
    emu.advance(2)  # shard 1 is running, shard 2 waits for quota, shard 3 behind it
    cancelled = pm.hook.cancel(platform=platform, job=rows_job(), run_id=submitted.run_id)
    assert cancelled.status == "Running" and "cancelled" in cancelled.message
    assert [f for f in run_files(emu, "run-1") if f["filename"].endswith("-cancelled.jsonl")]
    # Another process, later: shard 1 has ended and the quota has room, yet nothing is created.
    other = plugin_manager()
    emu.set_batch_token_quota("gpt-4o-batch", None)
    emu.clear_requests()
    done = until_ended(other, emu, platform, submitted.run_id)
    assert "batches.create" not in {r.kind for r in emu.requests}
    assert done.status == "Cancelled"
    assert [r["status"] for r in done.outputs["results"][299:301]] == ["failed", "missing"]
    assert done.outputs["missing_count"] == 600
    # Cancelling an ended run sends nothing that stops or marks anything.
    emu.clear_requests()
    again = pm.hook.cancel(platform=platform, job=rows_job(), run_id=submitted.run_id)
    assert again.status == "Cancelled" and "already ended" in again.message
    assert not {"batches.cancel", "files.upload"} & {r.kind for r in emu.requests}


@pytest.mark.parametrize(
    ("attributes", "body"),
    [
        ({}, {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "cancelled"}]}),
        (
            {"OpenAI_Batch_Endpoint": "/embeddings", "Deployment_Name": "embed-small"},
            {"model": "embed-small", "input": "cancelled"},
        ),
    ],
    ids=["chat", "embeddings"],
)
def test_cancel_leaves_a_well_formed_marker_line_and_cancels_each_shard_in_flight_once(
    pm: pluggy.PluginManager, emu: Emulator, attributes: dict[str, str], body: dict[str, Any]
) -> None:
    platform = sp_platform(emu)
    submitted = submit(pm, platform, prompts(4), OpenAI_Max_Requests_Per_Batch="2", **attributes)
    assert len(run_batches(emu, "run-1")) == 2  # every shard has its batch: nothing needs the files to decide
    cancelled = pm.hook.cancel(platform=platform, job=rows_job(**attributes), run_id=submitted.run_id)
    assert cancelled.status == "Running"
    assert cancelled.message.startswith("0 of 4 requests done, 0 failed, in 2 shards: ")  # the counts stay first
    assert "The run was cancelled: its shards in flight are being cancelled" in cancelled.message
    assert [b["status"] for b in run_batches(emu, "run-1")] == ["cancelling", "cancelling"]
    # The marker is one batch line of the run's url and deployment that no batch ever runs.
    [marker] = [f for f in run_files(emu, "run-1") if f["filename"] == file_prefix("run-1") + "cancelled.jsonl"]
    content = emu.file_content(marker["id"])
    url = "/v1" + attributes.get("OpenAI_Batch_Endpoint", "/chat/completions")
    assert json.loads(content) == {"custom_id": "polysync-marker", "method": "POST", "url": url, "body": body}
    assert content.endswith(b"}\n") and content.count(b"\n") == 1
    assert emu.file(marker["id"])["status"] == "processed"
    # Cancelled again while Azure is still cancelling: nothing is marked or cancelled twice.
    emu.clear_requests()
    again = pm.hook.cancel(platform=platform, job=rows_job(**attributes), run_id=submitted.run_id)
    assert again.status == "Running"
    assert not {"batches.cancel", "files.upload"} & {r.kind for r in emu.requests}
    assert until_ended(pm, emu, platform, submitted.run_id, **attributes).status == "Cancelled"


def test_a_second_cancel_while_shards_are_cancelling_marks_the_run_once(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The cancel reads the run's files, so it sees its own marker: a repeated cancel uploads no second one."""
    platform = sp_platform(emu)
    submitted = submit(pm, platform, prompts(4), OpenAI_Max_Requests_Per_Batch="2")
    assert submitted.status == "Running", submitted.message
    emu.advance(2)
    first = pm.hook.cancel(platform=platform, job=rows_job(), run_id=submitted.run_id)
    assert first.status == "Running" and "cancelled" in first.message
    assert {b["status"] for b in run_batches(emu, "run-1")} == {"cancelling"}
    emu.clear_requests()
    again = pm.hook.cancel(platform=platform, job=rows_job(), run_id=submitted.run_id)
    assert again.status == "Running" and "cancelled" in again.message
    assert "files.upload" not in {r.kind for r in emu.requests}
    assert len([f for f in run_files(emu, "run-1") if f["filename"].endswith("-cancelled.jsonl")]) == 1


def test_processing_past_a_minute_returns_running_and_a_later_poll_creates(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    emu.file_processing_seconds = 3600
    emu.clock_step_per_request = 30  # Azure's clock (the Date header) passes a minute within a few reads
    emu.clear_requests()
    submitted = submit(pm, platform, prompts(10))
    emu.clock_step_per_request = 0
    assert submitted.status == "Running" and "waiting for Azure to process its input file" in submitted.message
    # The minute passed on Azure's clock (its Date header) after a few reads of the file: submit
    # stops waiting then, without sitting out a minute on this machine's clock as well.
    assert [r.kind for r in emu.requests].count("files.get") <= 2, [r.kind for r in emu.requests]
    assert run_batches(emu, "run-1") == []
    emu.advance(3600)
    created = status(pm, platform, submitted.run_id)
    assert created.status == "Running" and len(run_batches(emu, "run-1")) == 1
    assert until_ended(pm, emu, platform, submitted.run_id).outputs["succeeded_count"] == 10


def test_results_past_max_results_mb_are_null_and_name_the_files_and_the_command(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    long_prompts = [f"Question {i}? " + "word " * 5 for i in range(8000)]
    submitted = submit(pm, platform, long_prompts, OpenAI_Max_Results_MB="1")
    done = until_ended(pm, emu, platform, submitted.run_id, step=60, OpenAI_Max_Results_MB="1")
    out = done.outputs
    assert done.status == "Success" and out["results"] is None and out["succeeded_count"] == 8000
    assert "'OpenAI Max Results MB' (1)" in done.message and out["output_file_ids"][0] in done.message
    assert f"polysync-azure-openai batch results '{submitted.run_id}' --out results.jsonl" in done.message
    assert status(pm, platform, submitted.run_id, OpenAI_Max_Results_MB="1").outputs == out
    bigger = status(pm, platform, submitted.run_id, OpenAI_Max_Results_MB="16")
    assert len(bigger.outputs["results"]) == 8000


@pytest.mark.parametrize("run_key", ["run/1 #2 ünï", "k" * 512])
def test_run_keys_of_any_text_travel_in_the_run_id(pm: pluggy.PluginManager, emu: Emulator, run_key: str) -> None:
    platform = sp_platform(emu)
    submitted = submit(pm, platform, prompts(2), run_key=run_key)
    assert len(submitted.run_id) <= 1024
    decoded = run_ids.decode_batch(submitted.run_id, BATCH)
    assert isinstance(decoded, run_ids.RowsRunId) and decoded.run_key == run_key
    assert until_ended(pm, emu, platform, submitted.run_id).status == "Success"


REPOLL = """
import json, sys
from polysync_azure_openai.cli.host import Job, Platform, plugin_manager

spec = json.load(sys.stdin)
platform = Platform(name="emulator", auth_method="Service Principal", attributes=spec["attributes"])
job = Job(**spec["job"])
result = plugin_manager().hook.get_status(platform=platform, job=job, run_id=spec["run_id"])
json.dump({"status": result.status, "outputs": dict(result.outputs), "message": result.message}, sys.stdout)
"""


def test_a_re_poll_in_a_fresh_process_returns_identical_results(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    attributes = {"OpenAI_Max_Requests_Per_Batch": "7"}
    requests = [*prompts(20), {"user_prompt": "EMULATOR_BLOCK", "custom_id": "blocked"}]
    submitted = submit(pm, platform, requests, **attributes)
    done = until_ended(pm, emu, platform, submitted.run_id, **attributes)
    assert done.status == "Success" and len(done.outputs["output_file_ids"]) == 3
    spec = {
        "attributes": dict(platform.attributes),  # the secret goes through stdin, never argv
        "job": {"job_type": BATCH, "external_id": "gpt-4o-batch::batch", "name": "gpt-4o-batch::batch"},
        "run_id": submitted.run_id,
    }
    child = subprocess.run(
        [sys.executable, "-c", REPOLL], input=json.dumps(spec), capture_output=True, text=True, timeout=120, check=False
    )
    assert child.returncode == 0, child.stderr
    again = json.loads(child.stdout)
    assert again["status"] == "Success"
    assert again["outputs"] == json.loads(json.dumps(dict(done.outputs)))
    assert again["outputs"]["results"][-1]["status"] == "content_filtered"


def test_every_0_1_0_run_id_still_works_through_the_hooks(pm: pluggy.PluginManager, emu: Emulator) -> None:
    from .test_batch import jsonl

    platform = sp_platform(emu)
    file_id = emu.add_file(jsonl(3))
    batch_run = pm.hook.submit(platform=platform, job=rows_job(), parameters={"input_file_id": file_id}, run_key="old")
    assert batch_run.run_id.startswith("batch_")
    emu.advance(60)
    assert status(pm, platform, batch_run.run_id).status == "Success"
    assert pm.hook.cancel(platform=platform, job=rows_job(), run_id=batch_run.run_id).status == "Success"
    assert pm.hook.monitor_url(platform=platform, job=rows_job(), run_id=batch_run.run_id).endswith("/overview")
    failed = "gpt-4o-batch#batch#Failed"
    assert status(pm, platform, failed).status == "Failed"
    assert pm.hook.cancel(platform=platform, job=rows_job(), run_id=failed).status == "Failed"
    for kind, external in (("Azure OpenAI Chat Completion", "gpt-4o"), ("Azure OpenAI Embedding", "embed-small")):
        for outcome in ("Success", "Failed"):
            run_id = f"{external}#sync#{outcome}"
            assert pm.hook.get_status(platform=platform, job=job(kind, external), run_id=run_id).status == outcome
            assert pm.hook.cancel(platform=platform, job=job(kind, external), run_id=run_id).status == outcome


def test_rows_that_echo_a_secret_are_scrubbed(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    # The emulator's answer repeats the prompt's first words, as a model may repeat what it was sent.
    requests = ["Question 0?", {"user_prompt": f"Echo {emu.client_secret} now"}]
    submitted = submit(pm, platform, requests)
    done = until_ended(pm, emu, platform, submitted.run_id)
    text = json.dumps(dict(done.outputs))
    assert emu.client_secret not in text and "***" in done.outputs["results"][1]["response"]
    assert done.outputs["results"][0]["response"].endswith("Question 0?")  # clean rows are untouched
    assert status(pm, platform, submitted.run_id).outputs == done.outputs


def test_rows_on_a_dated_api_version_use_its_bare_urls(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu, OpenAI_API_Version="2024-10-21")
    submitted = submit(pm, platform, prompts(5), OpenAI_Max_Requests_Per_Batch="3")
    decoded = run_ids.decode_batch(submitted.run_id, BATCH)
    assert isinstance(decoded, run_ids.RowsRunId) and decoded.url == "/chat/completions"
    assert {b["endpoint"] for b in run_batches(emu, "run-1")} == {"/chat/completions"}
    uploads = [r for r in emu.requests if r.kind == "files.upload"]
    assert uploads and all(r.path == "/openai/files" and r.query["api-version"] == "2024-10-21" for r in uploads)
    done = until_ended(pm, emu, platform, submitted.run_id)
    assert done.status == "Success" and [r["custom_id"] for r in done.outputs["results"]] == [f"row-{i}" for i in range(5)]


def test_a_run_key_too_long_for_a_run_id_is_refused_before_any_call(pm: pluggy.PluginManager, emu: Emulator) -> None:
    with pytest.raises(ConfigurationError) as info:
        submit(pm, sp_platform(emu), prompts(2), run_key="🙂" * 100)  # 100 characters, 1,200 percent-encoded
    assert str(info.value) == (
        "Job 'gpt-4o-batch::batch': run_key makes the RunId 1261 characters long, more than the 1024 a host stores. "
        "This is a host error: the host's run keys must be shorter."
    )
    assert emu.requests == []


def test_a_create_azure_refuses_not_for_quota_fails_the_run_at_submit_with_azures_words(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    """No batch exists, so the run's end is the reading's time, in UTC as every time the host gets."""
    refusal = {"error": {"code": "invalid_request", "message": "The input file is not valid."}}
    emu.inject(f.Status(400, body=refusal), kind="batches.create", times=None)
    result = submit(pm, sp_platform(emu), prompts(2))
    assert result.status == "Failed", result.message
    assert result.message.startswith(
        "0 of 2 requests done, 0 failed, in 1 shard: 1 refused by Azure. Azure refused to create shard 1's batch: "
        "HTTP 400 invalid_request: The input file is not valid. (request id "
    ), result.message
    assert result.ended_at is not None and result.ended_at.utcoffset() == timedelta(0)
    assert run_batches(emu, "run-1") == []


@pytest.mark.usefixtures("one_look_up")
def test_a_create_that_fails_for_now_at_submit_keeps_running_with_every_output_key(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    emu.inject(f.Status(503), kind="batches.create", times=None)
    result = submit(pm, sp_platform(emu, Max_Retries="0"), prompts(2))
    assert result.status == "Running", result.message
    assert result.message.startswith("The input files are uploaded; creating the batches failed for now (HTTP 503 ")
    assert set(result.outputs) == OUTPUT_KEYS
    counts = {k: v for k, v in result.outputs.items() if k.startswith("request_counts_")}
    assert counts == {"request_counts_total": 2, "request_counts_completed": 0, "request_counts_failed": 0}


@pytest.mark.usefixtures("one_look_up")
def test_a_re_submit_after_only_the_first_shard_s_upload_uploads_every_other_shard_once(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    """The first submit fails at shard 2's upload; the re-submit reuses shard 1's file and uploads
    shards 2 and 3, one file per shard, and the run ends with every row."""
    platform = sp_platform(emu, Max_Retries="0")
    emu.inject(FailsTheSecond(), kind="files.upload", times=None)
    first = submit(pm, platform, prompts(3), OpenAI_Max_Requests_Per_Batch="1")
    assert first.status == "Failed", first.message
    assert [x["filename"] for x in run_files(emu, "run-1")] == [file_prefix("run-1") + "1.jsonl"]
    emu.clear_faults()
    emu.clear_requests()
    again = submit(pm, platform, prompts(3), OpenAI_Max_Requests_Per_Batch="1")
    assert again.status == "Running", again.message
    assert [r.kind for r in emu.requests].count("files.upload") == 2
    assert sorted(x["filename"] for x in run_files(emu, "run-1")) == [file_prefix("run-1") + f"{i}.jsonl" for i in (1, 2, 3)]
    done = until_ended(pm, emu, platform, again.run_id, OpenAI_Max_Requests_Per_Batch="1")
    assert done.status == "Success" and [r["custom_id"] for r in done.outputs["results"]] == ["row-0", "row-1", "row-2"]


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_a_clean_run_counts_no_failed_request_and_ends_when_its_batch_completed(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    submitted = submit(pm, platform, prompts(3))
    done = until_ended(pm, emu, platform, submitted.run_id, step=600)
    assert done.status == "Success"
    assert (done.outputs["request_counts_completed"], done.outputs["request_counts_failed"]) == (3, 0)
    assert "3 of 3 requests done, 0 failed" in done.message
    (batch,) = run_batches(emu, "run-1")
    assert done.ended_at == at(batch["completed_at"])  # not the time of the read that saw it


def test_an_expired_run_of_rows_fails_and_ends_when_its_batch_expired(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.batch_timing.requests_per_second = 0.001  # far too slow for the 24 h window
    platform = sp_platform(emu)
    submitted = submit(pm, platform, prompts(500))
    emu.advance(25 * 3600)
    result = status(pm, platform, submitted.run_id)
    assert result.status == "Failed", result.message
    assert "1 expired" in result.message
    (batch,) = run_batches(emu, "run-1")
    assert batch["status"] == "expired" and result.ended_at == at(batch["expired_at"])
    assert f"Shard 1: Batch {batch['id']} expired before it finished (completion window 24h)" in result.message


@pytest.mark.parametrize(
    ("items", "key", "what"),
    [
        (["Question 0?", "Question 1?", "Question 2?"], "output_file_id", "output file"),
        (["Question 0?", "Please EMULATOR_BLOCK this"], "error_file_id", "error file"),
    ],
    ids=["output-file", "error-file"],
)
def test_a_result_file_gone_before_the_join_is_named_in_the_message(
    pm: pluggy.PluginManager, emu: Emulator, items: list[str], key: str, what: str
) -> None:
    platform = sp_platform(emu)
    submitted = submit(pm, platform, items)
    emu.advance(24 * 3600)
    (batch,) = run_batches(emu, "run-1")
    file_id = batch[key]
    with requests.Session() as http:
        http.trust_env = False
        url = f"{emu.url}/openai/files/{file_id}?api-version=2024-10-21"
        assert http.delete(url, headers={"api-key": emu.api_key}, verify=emu.ca_path).status_code == 200
    result = status(pm, platform, submitted.run_id)
    assert result.status == "Success" and result.outputs["results"] is None
    assert f"The results cannot be joined: shard 1's {what} {file_id} is gone (HTTP 404" in result.message


def test_a_run_key_as_long_as_a_run_id_holds_is_taken(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The check allows a 12-digit creation time: a key that fills 1,024 characters with it is sent;
    one character more is refused (test_a_run_key_too_long_for_a_run_id_is_refused_before_any_call)."""
    platform = sp_platform(emu)
    short = submit(pm, platform, prompts(2), run_key="k")
    created = run_ids.decode_batch(short.run_id, BATCH).created  # type: ignore[union-attr]
    room = 1024 - (len(short.run_id) - len(str(created)) + 12 - 1)  # the key's percent-encoded length that fits
    key = "🙂" * (room // 12) + "k" * (room % 12)  # at most 512 characters (Azure's metadata), 12 encoded each
    result = submit(pm, platform, prompts(2), run_key=key)
    assert result.status == "Running", result.message
    assert len(result.run_id) <= 1024 and run_ids.decode_batch(result.run_id, BATCH).run_key == key  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match=r"run_key makes the RunId 1025 characters long"):
        submit(pm, platform, prompts(2), run_key=key + "k")


def test_each_created_shard_batch_is_logged_with_its_id(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="polysync_azure_openai.jobs.batch_shards"):
        submit(pm, sp_platform(emu), prompts(4), OpenAI_Max_Requests_Per_Batch="2")
    ids = {b["metadata"]["polysync_shard"]: b["id"] for b in run_batches(emu, "run-1")}
    assert f"Created batch {ids['1/2']} for shard 1/2" in caplog.messages
    assert f"Created batch {ids['2/2']} for shard 2/2" in caplog.messages


def test_rows_from_an_error_file_alone_are_written(emu: Emulator) -> None:
    """Azure gives no output file when every request failed: the rows come from the error file."""
    files = FilesApi(PlatformConfig.from_host(sp_platform(emu)))
    errors = [
        {"id": f"r{i}", "custom_id": f"row-{i}", "response": None, "error": {"code": "bad", "message": f"no {i}"}}
        for i in range(2)
    ]
    error_file_id = emu.add_file("".join(json.dumps(e) + "\n" for e in errors), purpose="batch_output", status="processed")
    plan = JoinPlan(True, True, "n", (ShardFiles(1, 0, 2, None, None, error_file_id),))
    out = io.BytesIO()
    tally = write_jsonl(plan, files, out, redactor_for(files.config))
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["custom_id"], r["status"]) for r in rows] == [("row-0", "failed"), ("row-1", "failed")]
    assert [r["error"] for r in rows] == [{"code": "bad", "message": "no 0"}, {"code": "bad", "message": "no 1"}]
    assert tally.counts == {"succeeded": 0, "failed": 2, "content_filtered": 0, "missing": 0}


def test_a_re_submit_logs_each_reused_input_file_by_name(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    platform = sp_platform(emu)
    emu.lose_next_batch_create()
    submit(pm, platform, prompts(3))
    (line_file,) = run_files(emu, "run-1")
    with caplog.at_level(logging.INFO, logger="polysync_azure_openai.jobs.batch_rows"):
        submit(pm, platform, prompts(3))
    assert f"Reusing {file_prefix('run-1')}1.jsonl ({line_file['id']}) for shard 1" in caplog.messages


def test_input_files_processed_within_the_minute_are_created_at_submit(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """Submit reads the pending files again while it waits: each shard is created once its file is
    processed, shard 1's (processed before the wait) as well as shard 2's (processed during it)."""
    platform = sp_platform(emu)
    emu.file_processing_seconds = 25
    emu.clock_step_per_request = 10  # each request is 10 s later on Azure's clock
    submitted = submit(pm, platform, prompts(4), OpenAI_Max_Requests_Per_Batch="2")
    emu.clock_step_per_request = 0
    assert submitted.status in ("Running", "Success"), submitted.message  # Azure's clock ran on: done already
    assert sorted(b["metadata"]["polysync_shard"] for b in run_batches(emu, "run-1")) == ["1/2", "2/2"], submitted.message


def test_an_input_file_azure_refused_fails_the_run_with_azures_detail(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """A re-submit reuses the shard's file by name; Azure's processing had refused it: no batch, Failed."""
    emu.add_file("{}\n", purpose="batch", filename=file_prefix("run-1") + "1.jsonl", status="error")
    result = submit(pm, sp_platform(emu), prompts(3))
    assert result.status == "Failed", result.message
    assert "1 input file refused" in result.message
    assert "Azure refused shard 1's input file: The status was set by the test." in result.message
    assert run_batches(emu, "run-1") == []


def test_a_shard_whose_batch_failed_validation_fails_the_run(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """A re-submit reuses the shard's file by name; Azure's validation fails its batch (not for
    quota): the run is Failed, not a Success of no rows."""
    emu.add_file("{}\n", purpose="batch", filename=file_prefix("run-1") + "1.jsonl", status="processed")
    platform = sp_platform(emu)
    submitted = submit(pm, platform, prompts(3))
    done = until_ended(pm, emu, platform, submitted.run_id)
    (batch,) = run_batches(emu, "run-1")
    assert batch["status"] == "failed"
    assert done.status == "Failed", done.message
    assert "in 1 shard: 1 failed." in done.message and f"Shard 1: Batch {batch['id']} failed" in done.message


def test_a_fail_fast_refusal_with_nothing_in_flight_fails_the_run_at_submit(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The refusal's marker is read back at once: submit already knows nothing will free the quota."""
    emu.set_batch_token_quota("gpt-4o-batch", 10, fail_fast=True)  # not even one shard fits
    result = submit(pm, sp_platform(emu), prompts(20))
    assert result.status == "Failed", result.message
    assert "in 1 shard: 1 refused for quota. Shard 1 of 1 was refused while nothing else of the run was in flight" in (
        result.message
    )
    assert run_batches(emu, "run-1") == []


def test_object_items_that_ask_no_json_format_get_text_answers(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """Only an item that asks for JSON is read as JSON: object items without a response_format run
    as plan "dn", and their text answers succeed as text instead of failing as invalid JSON."""
    platform = sp_platform(emu)
    submitted = submit(pm, platform, [{"user_prompt": "Question 0?"}, {"user_prompt": "Question 1?", "custom_id": "row-1"}])
    assert run_ids.decode_batch(submitted.run_id, BATCH).plan == "dn"  # type: ignore[union-attr]
    done = until_ended(pm, emu, platform, submitted.run_id)
    results = done.outputs["results"]
    assert [(r["status"], bool(r["response"]), r["response_json"]) for r in results] == [("succeeded", True, None)] * 2
    assert done.outputs["failed_count"] == 0


def test_an_input_file_gone_before_its_batch_was_created_fails_the_run_naming_it(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The shard's file was still processing at submit; it is deleted before the next poll creates
    the batch: the run is Failed, naming the file, not read as a file Azure refused."""
    platform = sp_platform(emu)
    emu.file_processing_seconds = 3600
    emu.clock_step_per_request = 30  # Azure's clock passes the minute of waiting within a few reads
    submitted = submit(pm, platform, prompts(3))
    emu.clock_step_per_request = 0
    assert submitted.status == "Running" and run_batches(emu, "run-1") == [], submitted.message
    (line_file,) = run_files(emu, "run-1")
    with requests.Session() as http:
        http.trust_env = False
        url = f"{emu.url}/openai/files/{line_file['id']}?api-version=2024-10-21"
        assert http.delete(url, headers={"api-key": emu.api_key}, verify=emu.ca_path).status_code == 200
    result = status(pm, platform, submitted.run_id)
    assert result.status == "Failed", result.message
    assert "1 input file missing" in result.message
    assert f" Shard 1's input file {file_prefix('run-1')}1.jsonl is gone from the resource." in result.message
    assert "Azure refused" not in result.message
    assert run_batches(emu, "run-1") == []


def test_a_poll_of_a_run_whose_every_shard_has_its_batch_reads_one_page_of_batches_and_no_files(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    """Azure's list says it has no more batches: the poll asks for no further page, and with every
    shard's batch found (none refused for quota) it has no use for the file list."""
    platform = sp_platform(emu)
    submitted = submit(pm, platform, prompts(4), OpenAI_Max_Requests_Per_Batch="2")
    assert len(run_batches(emu, "run-1")) == 2
    emu.clear_requests()
    polled = status(pm, platform, submitted.run_id)
    assert polled.status == "Running", polled.message
    assert [(r.kind, r.status) for r in emu.requests] == [("batches.list", 200)]


def test_a_poll_whose_batch_list_is_cut_names_the_listing(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu, Max_Retries="0")
    submitted = submit(pm, platform, prompts(2))
    emu.inject(f.MalformedJson(), kind="batches.list")
    result = status(pm, platform, submitted.run_id)
    assert result.status == "Unknown"
    assert result.message.startswith(
        f"Reading the status of run {submitted.run_id} failed: HTTP 200 MalformedJSON: "
        "Listing batches: the body is not valid JSON ("
    ), result.message
    assert result.message.endswith(". The batch may still be running on Azure; polling continues.")
