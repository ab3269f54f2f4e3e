"""The Batch API: creation checks, every state on the emulator's clock, outputs, listing, the lost create."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from polysync_azure_openai.emulator import Emulator

from .emulator_helpers import DATA_SCOPE, batch_jsonl, batch_line, batches_url, secret_token

# wire-samples §7, every field of a batch object.
BATCH_KEYS = {
    "id",
    "object",
    "endpoint",
    "errors",
    "input_file_id",
    "completion_window",
    "status",
    "output_file_id",
    "error_file_id",
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
    "request_counts",
    "metadata",
}
DAY = 24 * 3600


def _create(http: requests.Session, emu: Emulator, file_id: str, **fields: Any) -> requests.Response:
    body = {"input_file_id": file_id, "endpoint": "/chat/completions", "completion_window": "24h", **fields}
    return http.post(batches_url(emu), json=body, headers={"api-key": emu.api_key})


def _get(http: requests.Session, emu: Emulator, batch_id: str) -> dict[str, Any]:
    response = http.get(batches_url(emu, f"/{batch_id}"), headers={"api-key": emu.api_key})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _cancel(http: requests.Session, emu: Emulator, batch_id: str) -> requests.Response:
    return http.post(batches_url(emu, f"/{batch_id}/cancel"), headers={"api-key": emu.api_key})


def _start(http: requests.Session, emu: Emulator, content: str, **fields: Any) -> dict[str, Any]:
    response = _create(http, emu, emu.add_file(content), **fields)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _lines(emu: Emulator, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in emu.file_content(file_id).decode().splitlines()]


def test_create_answers_a_validating_batch_with_every_field(emu: Emulator, http: requests.Session) -> None:
    file_id = emu.add_file(batch_jsonl(3))
    response = _create(http, emu, file_id, metadata={"run_key": "job-42-try-1"})
    assert response.status_code == 200
    batch = response.json()
    assert set(batch) == BATCH_KEYS
    created = int(emu.clock.now())
    assert batch["id"].startswith("batch_")
    assert batch == {
        "id": batch["id"],
        "object": "batch",
        "endpoint": "/chat/completions",
        "errors": None,
        "input_file_id": file_id,
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": created,
        "in_progress_at": None,
        "expires_at": created + DAY,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": {"run_key": "job-42-try-1"},
    }
    assert emu.batches == [batch["id"]]
    assert emu.batch(batch["id"]) == batch
    assert [r.kind for r in emu.requests] == ["batches.create"]


def test_every_state_of_a_completed_batch_by_the_clock(emu: Emulator, http: requests.Session) -> None:
    batch = _start(http, emu, batch_jsonl(1000))
    batch_id, created = batch["id"], batch["created_at"]
    emu.advance(0.5)
    assert _get(http, emu, batch_id)["status"] == "validating"
    emu.advance(0.5)
    running = _get(http, emu, batch_id)
    assert (running["status"], running["in_progress_at"]) == ("in_progress", created + 1)
    assert running["request_counts"] == {"total": 1000, "completed": 0, "failed": 0}
    emu.advance(4.12)
    assert _get(http, emu, batch_id)["request_counts"] == {"total": 1000, "completed": 412, "failed": 0}
    emu.advance(5.87)
    assert _get(http, emu, batch_id)["request_counts"]["completed"] == 999
    emu.advance(0.01)
    finalizing = _get(http, emu, batch_id)
    assert (finalizing["status"], finalizing["finalizing_at"]) == ("finalizing", created + 11)
    assert finalizing["output_file_id"] is None
    emu.advance(1)
    done = _get(http, emu, batch_id)
    assert (done["status"], done["completed_at"]) == ("completed", created + 12)
    assert done["request_counts"] == {"total": 1000, "completed": 1000, "failed": 0}
    assert done["errors"] is None and done["in_progress_at"] == created + 1
    assert all(done[field] is None for field in ("failed_at", "expired_at", "cancelling_at", "cancelled_at"))

    output = _lines(emu, done["output_file_id"])
    assert [line["custom_id"] for line in output] == [f"task-{i}" for i in range(1000)]
    first = output[0]
    assert set(first) == {"custom_id", "response", "error"} and first["error"] is None
    assert first["response"]["status_code"] == 200 and first["response"]["request_id"]
    body = first["response"]["body"]
    assert body["object"] == "chat.completion" and body["model"] == "gpt-4o-2024-08-06"
    assert "Question number 0?" in body["choices"][0]["message"]["content"]
    assert created + 1 <= body["created"] <= created + 11
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    # Azure keeps an (empty) error file even when nothing failed.
    assert emu.file_content(done["error_file_id"]) == b""
    for file_id in (done["output_file_id"], done["error_file_id"]):
        info = emu.file(file_id)
        assert info["purpose"] == "batch_output" and info["status"] == "processed"
        assert info["created_at"] == created + 12
    # Reading again changes nothing.
    emu.advance(DAY * 2)
    assert _get(http, emu, batch_id) == done


def test_the_same_answers_as_a_synchronous_call(emu: Emulator, http: requests.Session) -> None:
    # One implementation behind both: a Global Batch line answers like the standard deployment.
    batch = _start(http, emu, batch_jsonl(2))
    emu.advance(60)
    done = _get(http, emu, batch["id"])
    sync = http.post(
        f"{emu.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        json={"messages": [{"role": "user", "content": "Question number 1?"}]},
        headers={"api-key": emu.api_key},
    ).json()
    by_id = {line["custom_id"]: line["response"]["body"] for line in _lines(emu, done["output_file_id"])}
    assert by_id["task-1"]["choices"] == sync["choices"] and by_id["task-1"]["usage"] == sync["usage"]
    assert by_id["task-1"]["model"] == sync["model"]


def test_a_standard_deployment_also_takes_batch_lines(emu: Emulator, http: requests.Session) -> None:
    batch = _start(http, emu, batch_jsonl(2, model="gpt-4o"))
    emu.advance(60)
    assert _get(http, emu, batch["id"])["request_counts"] == {"total": 2, "completed": 2, "failed": 0}


def test_failed_lines_go_to_the_error_file(emu: Emulator, http: requests.Session) -> None:
    lines = [
        batch_line(0),
        batch_line(1, content="please EMULATOR_BLOCK this"),
        batch_line(2),
        {**batch_line(3), "body": {"model": "gpt-4o-batch", "messages": [], "temperature": 9}},
    ]
    batch = _start(http, emu, "".join(json.dumps(line) + "\n" for line in lines))
    emu.advance(60)
    done = _get(http, emu, batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
    assert [line["custom_id"] for line in _lines(emu, done["output_file_id"])] == ["task-0", "task-2"]
    blocked, invalid = _lines(emu, done["error_file_id"])
    assert blocked["custom_id"] == "task-1" and blocked["error"] is None
    assert blocked["response"]["status_code"] == 400
    assert blocked["response"]["body"]["error"]["code"] == "content_filter"
    assert blocked["response"]["body"]["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert invalid["response"]["status_code"] == 400
    assert invalid["response"]["body"]["error"]["param"] == "messages"


def test_embeddings_batch(emu: Emulator, http: requests.Session) -> None:
    batch = _start(http, emu, batch_jsonl(3, model="embed-small", url="/embeddings"), endpoint="/embeddings")
    emu.advance(60)
    done = _get(http, emu, batch["id"])
    assert done["status"] == "completed" and done["endpoint"] == "/embeddings"
    bodies = [line["response"]["body"] for line in _lines(emu, done["output_file_id"])]
    assert [body["object"] for body in bodies] == ["list"] * 3
    assert len(bodies[0]["data"][0]["embedding"]) == 1536


def test_embeddings_lines_on_a_chat_model_fail_line_by_line(emu: Emulator, http: requests.Session) -> None:
    batch = _start(http, emu, batch_jsonl(2, model="gpt-4o-batch", url="/embeddings"), endpoint="/embeddings")
    emu.advance(60)
    done = _get(http, emu, batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 2, "completed": 0, "failed": 2}
    errors = _lines(emu, done["error_file_id"])
    assert {line["response"]["body"]["error"]["code"] for line in errors} == {"OperationNotSupported"}
    assert emu.file_content(done["output_file_id"]) == b""


def _line_text(**changes: Any) -> str:
    return json.dumps({**batch_line(1), **changes}) + "\n"


@pytest.mark.parametrize(
    ("content", "code", "line"),
    [
        pytest.param("", "empty_file", None, id="empty-file"),
        pytest.param("\n \n", "empty_batch", None, id="only-blank-lines"),
        pytest.param(batch_jsonl(1) + "{not json\n", "invalid_json_line", 2, id="invalid-json"),
        pytest.param(batch_jsonl(1) + "[1, 2]\n", "invalid_json_line", 2, id="not-an-object"),
        pytest.param(batch_jsonl(2) + _line_text(custom_id="task-0"), "duplicate_custom_id", 3, id="duplicate-id"),
        pytest.param(batch_jsonl(1) + _line_text(url="/embeddings"), "url_mismatch", 2, id="url-mismatch"),
        pytest.param(batch_jsonl(1) + _line_text(url="/v1/chat/completions"), "url_mismatch", 2, id="v1-url"),
        pytest.param(batch_jsonl(1, model="no-such-deployment"), "model_not_found", 1, id="unknown-model"),
        pytest.param(batch_jsonl(1, model="gpt-35-old"), "model_not_found", 1, id="model-not-succeeded"),
        pytest.param(batch_jsonl(1) + json.dumps(batch_line(1, model="gpt-4o")) + "\n", "model_mismatch", 2, id="two-models"),
        pytest.param(_line_text(custom_id=None), "invalid_request", 1, id="no-custom-id"),
        pytest.param(_line_text(method="GET"), "invalid_request", 1, id="get-method"),
        pytest.param(_line_text(body="hello"), "invalid_request", 1, id="body-not-object"),
        pytest.param("\ufeff" + batch_jsonl(1), "invalid_request", 1, id="bom"),
        pytest.param("\n" + batch_jsonl(1) + "\n" + _line_text(url="/x"), "url_mismatch", 4, id="physical-line-numbers"),
    ],
)
def test_validation_failures(emu: Emulator, http: requests.Session, content: str, code: str, line: int | None) -> None:
    # A forced status skips file processing, which would refuse most of these files already.
    response = _create(http, emu, emu.add_file(content, status="processed"))
    assert response.status_code == 200
    batch_id = response.json()["id"]
    emu.advance(0.999)
    assert _get(http, emu, batch_id)["status"] == "validating"
    emu.advance(0.001)
    failed = _get(http, emu, batch_id)
    assert failed["status"] == "failed"
    assert failed["failed_at"] == failed["created_at"] + 1
    assert failed["errors"]["object"] == "list"
    error = failed["errors"]["data"][0]
    assert (error["code"], error["line"]) == (code, line)
    assert error["message"]
    assert failed["request_counts"]["completed"] is None and failed["request_counts"]["failed"] is None
    assert failed["output_file_id"] is None and failed["error_file_id"] is None
    assert failed["in_progress_at"] is None


def test_validation_reports_the_first_ten_bad_lines(emu: Emulator, http: requests.Session) -> None:
    content = batch_jsonl(30, url="/embeddings")
    response = _create(http, emu, emu.add_file(content))
    emu.advance(1)
    failed = _get(http, emu, response.json()["id"])
    assert [error["line"] for error in failed["errors"]["data"]] == list(range(1, 11))
    assert failed["request_counts"]["total"] == 30


def test_too_many_tasks(emu: Emulator, http: requests.Session) -> None:
    response = _create(http, emu, emu.add_file("{}\n" * 100_001))
    emu.advance(1)
    failed = _get(http, emu, response.json()["id"])
    assert failed["status"] == "failed"
    assert [error["code"] for error in failed["errors"]["data"]] == ["too_many_tasks"]
    assert failed["request_counts"]["total"] == 100_001


CREATE_PROBLEMS = [
    pytest.param({"input_file_id": None}, "input_file_id", id="no-input-file"),
    pytest.param({"endpoint": None}, "endpoint", id="no-endpoint"),
    pytest.param({"completion_window": None}, "completion_window", id="no-window"),
    pytest.param({"input_file_id": 7}, "input_file_id", id="file-id-not-string"),
    pytest.param({"endpoint": "/v1/chat/completions"}, "endpoint", id="v1-endpoint"),
    pytest.param({"endpoint": "/completions"}, "endpoint", id="other-endpoint"),
    pytest.param({"completion_window": "48h"}, "completion_window", id="48h"),
    pytest.param({"metadata": ["a"]}, "metadata", id="metadata-list"),
    pytest.param({"metadata": {"a": 1}}, "metadata", id="metadata-number"),
    pytest.param({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", id="17-keys"),
    pytest.param({"metadata": {"k": "v" * 513}}, "metadata", id="long-value"),
    pytest.param({"metadata": {"k" * 65: "v"}}, "metadata", id="long-key"),
    pytest.param({"input_file_id": "file-unknown"}, "input_file_id", id="unknown-file"),
]


@pytest.mark.parametrize(("changes", "target"), CREATE_PROBLEMS)
def test_create_refuses_bad_bodies(emu: Emulator, http: requests.Session, changes: dict[str, Any], target: str) -> None:
    body = {"input_file_id": emu.add_file(batch_jsonl(1)), "endpoint": "/chat/completions", "completion_window": "24h"}
    body.update(changes)
    body = {key: value for key, value in body.items() if value is not None}
    response = http.post(batches_url(emu), json=body, headers={"api-key": emu.api_key})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["target"]) == ("invalidPayload", target)
    assert error["message"]
    assert emu.batches == []


def test_create_accepts_the_metadata_limits(emu: Emulator, http: requests.Session) -> None:
    metadata = {f"{i:0>64}": "v" * 512 for i in range(16)}
    response = _create(http, emu, emu.add_file(batch_jsonl(1)), metadata=metadata)
    assert response.status_code == 200
    assert response.json()["metadata"] == metadata


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(b"{nope", "application/json"), (b"[]", "application/json"), (b"\xff", "application/json"), (b"{}", "text/plain")],
)
def test_create_refuses_what_is_not_a_json_object(emu: Emulator, http: requests.Session, data: bytes, content_type: str) -> None:
    response = http.post(batches_url(emu), data=data, headers={"api-key": emu.api_key, "Content-Type": content_type})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalidPayload"


def test_create_needs_a_processed_batch_file(emu: Emulator, http: requests.Session) -> None:
    tuning = emu.add_file(batch_jsonl(1), purpose="fine-tune")
    broken = emu.add_file("\ufeff" + batch_jsonl(1))
    assert emu.file(broken)["status"] == "error"
    emu.file_processing_seconds = 60
    pending = emu.add_file(batch_jsonl(1))
    answers = {
        name: _create(http, emu, file_id) for name, file_id in [("tuning", tuning), ("broken", broken), ("pending", pending)]
    }
    assert {name: (r.status_code, r.json()["error"]["code"]) for name, r in answers.items()} == {
        "tuning": (400, "invalidPayload"),
        "broken": (400, "fileImportFailed"),
        "pending": (400, "unexpectedEntityState"),
    }
    assert "byte order mark" in answers["broken"].json()["error"]["message"]
    emu.advance(60)
    assert _create(http, emu, pending).status_code == 200


def test_expired_batch_keeps_its_partial_output(emu: Emulator, http: requests.Session) -> None:
    emu.batch_timing.requests_per_second = 0.001
    batch = _start(http, emu, batch_jsonl(100))
    emu.advance(DAY - 0.001)
    running = _get(http, emu, batch["id"])
    assert running["status"] == "in_progress"
    assert running["request_counts"]["completed"] == 86
    emu.advance(0.001)
    expired = _get(http, emu, batch["id"])
    assert expired["status"] == "expired"
    assert expired["expired_at"] == batch["created_at"] + DAY == expired["expires_at"]
    assert expired["completed_at"] is None and expired["finalizing_at"] is None
    assert [error["code"] for error in expired["errors"]["data"]] == ["batch_expired"]
    assert expired["request_counts"] == {"total": 100, "completed": 86, "failed": 0}
    assert [line["custom_id"] for line in _lines(emu, expired["output_file_id"])] == [f"task-{i}" for i in range(86)]
    never_ran = _lines(emu, expired["error_file_id"])
    assert [line["custom_id"] for line in never_ran] == [f"task-{i}" for i in range(86, 100)]
    assert never_ran[0]["response"] is None
    assert never_ran[0]["error"]["code"] == "batch_expired" and never_ran[0]["error"]["message"]


def test_cancel_stops_processing_and_keeps_the_partial_output(emu: Emulator, http: requests.Session) -> None:
    batch = _start(http, emu, batch_jsonl(1000))
    emu.advance(3.5)
    response = _cancel(http, emu, batch["id"])
    assert response.status_code == 200
    cancelling = response.json()
    assert set(cancelling) == BATCH_KEYS
    assert cancelling["status"] == "cancelling"
    assert cancelling["cancelling_at"] == batch["created_at"] + 3
    assert cancelling["request_counts"] == {"total": 1000, "completed": 250, "failed": 0}
    emu.advance(0.5)
    still = _get(http, emu, batch["id"])
    assert still["status"] == "cancelling" and still["request_counts"]["completed"] == 250
    again = _cancel(http, emu, batch["id"])
    assert again.status_code == 200 and again.json()["cancelling_at"] == cancelling["cancelling_at"]
    emu.advance(0.5)
    cancelled = _get(http, emu, batch["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelled_at"] == batch["created_at"] + 4
    assert cancelled["request_counts"] == {"total": 1000, "completed": 250, "failed": 0}
    assert len(_lines(emu, cancelled["output_file_id"])) == 250
    never_ran = _lines(emu, cancelled["error_file_id"])
    assert len(never_ran) == 750 and never_ran[0]["custom_id"] == "task-250"
    assert {line["error"]["code"] for line in never_ran} == {"batch_cancelled"}
    ended = _cancel(http, emu, batch["id"])
    assert ended.status_code == 409
    assert ended.json()["error"]["code"] == "conflict"
    assert [r.kind for r in emu.requests].count("batches.cancel") == 3


def test_cancel_while_validating_and_cancel_unknown(emu: Emulator, http: requests.Session) -> None:
    batch = _start(http, emu, batch_jsonl(5))
    assert _cancel(http, emu, batch["id"]).json()["status"] == "cancelling"
    emu.advance(5)
    cancelled = _get(http, emu, batch["id"])
    assert cancelled["status"] == "cancelled" and cancelled["in_progress_at"] is None
    assert cancelled["output_file_id"] is None and cancelled["request_counts"]["total"] == 0
    missing = _cancel(http, emu, "batch_nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "notFound", "message": "Batch with id 'batch_nope' not found."}}
    assert http.get(batches_url(emu, "/batch_nope"), headers={"api-key": emu.api_key}).status_code == 404


def test_completed_and_failed_batches_cannot_be_cancelled(emu: Emulator, http: requests.Session) -> None:
    done = _start(http, emu, batch_jsonl(1))
    failed = _start(http, emu, batch_jsonl(1, model="missing"))
    emu.advance(60)
    for batch in (done, failed):
        response = _cancel(http, emu, batch["id"])
        assert (response.status_code, response.json()["error"]["code"]) == (409, "conflict")


def test_timing_settings_shape_the_phases(emu: Emulator, http: requests.Session) -> None:
    emu.batch_timing.validating_seconds = 10
    emu.batch_timing.requests_per_second = 2.5
    emu.batch_timing.finalizing_seconds = 0
    batch = _start(http, emu, batch_jsonl(10))
    emu.advance(10 + 2)
    assert _get(http, emu, batch["id"])["request_counts"]["completed"] == 5
    # A new rate counts from the next read on.
    emu.batch_timing.requests_per_second = 1000
    assert _get(http, emu, batch["id"])["request_counts"]["completed"] == 5
    emu.advance(0.005)
    done = _get(http, emu, batch["id"])
    assert done["status"] == "completed"
    assert done["completed_at"] == done["finalizing_at"] == batch["created_at"] + 12
    with pytest.raises(ValueError):
        emu.batch_timing.requests_per_second = 0
    with pytest.raises(ValueError):
        emu.batch_timing.validating_seconds = -1


def test_deleting_the_input_file_does_not_disturb_the_batch(emu: Emulator, http: requests.Session) -> None:
    batch = _start(http, emu, batch_jsonl(3))
    http.delete(f"{emu.url}/openai/files/{batch['input_file_id']}?api-version=2024-10-21", headers={"api-key": emu.api_key})
    emu.advance(60)
    assert _get(http, emu, batch["id"])["request_counts"] == {"total": 3, "completed": 3, "failed": 0}


def test_list_pages_newest_first(emu: Emulator, http: requests.Session) -> None:
    file_id = emu.add_file(batch_jsonl(1))
    ids = []
    for _ in range(25):
        ids.append(_create(http, emu, file_id).json()["id"])
        emu.advance(1)
    newest_first = ids[::-1]
    first = http.get(batches_url(emu), headers={"api-key": emu.api_key}).json()
    assert set(first) == {"object", "data", "first_id", "last_id", "has_more"}
    assert [item["id"] for item in first["data"]] == newest_first[:20]
    assert (first["first_id"], first["last_id"], first["has_more"]) == (newest_first[0], newest_first[19], True)
    assert all(set(item) == BATCH_KEYS for item in first["data"])
    second = http.get(batches_url(emu), params={"after": first["last_id"]}, headers={"api-key": emu.api_key}).json()
    assert [item["id"] for item in second["data"]] == newest_first[20:]
    assert second["has_more"] is False
    exact = http.get(batches_url(emu), params={"limit": "5", "after": newest_first[14]}, headers={"api-key": emu.api_key}).json()
    assert [item["id"] for item in exact["data"]] == newest_first[15:20] and exact["has_more"] is True
    last = http.get(batches_url(emu), params={"limit": "100", "after": newest_first[-1]}, headers={"api-key": emu.api_key}).json()
    assert last == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    assert emu.batches == newest_first
    # Reading the list brings each listed batch up to date.
    emu.advance(60)
    everything = http.get(batches_url(emu), params={"limit": "100"}, headers={"api-key": emu.api_key}).json()
    assert {item["status"] for item in everything["data"]} == {"completed"} and len(everything["data"]) == 25


@pytest.mark.parametrize(
    ("params", "target"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit"), ({"after": "batch_unknown"}, "after")],
)
def test_list_refuses_bad_paging(emu: Emulator, http: requests.Session, params: dict[str, str], target: str) -> None:
    response = http.get(batches_url(emu), params=params, headers={"api-key": emu.api_key})
    assert response.status_code == 400
    assert response.json()["error"]["target"] == target


def test_lost_create_resets_the_connection_but_the_batch_exists(emu: Emulator, http: requests.Session) -> None:
    file_id = emu.add_file(batch_jsonl(2))
    emu.lose_next_batch_create(newer_batches=3)
    with pytest.raises(requests.exceptions.ConnectionError):
        _create(http, emu, file_id, metadata={"polysync_run_key": "mine"})
    batches = [emu.batch(batch_id) for batch_id in emu.batches]
    assert len(batches) == 4
    mine = batches[-1]
    assert mine["metadata"] == {"polysync_run_key": "mine"}
    assert [batch["metadata"]["polysync_run_key"] for batch in batches[:3]] == ["mine-other-3", "mine-other-2", "mine-other-1"]
    assert [batch["created_at"] - mine["created_at"] for batch in batches] == [3, 2, 1, 0]
    [recorded] = emu.requests
    assert (recorded.kind, recorded.status, recorded.fault) == ("batches.create", 0, "lose_batch_create")
    assert json.loads(recorded.body)["metadata"] == {"polysync_run_key": "mine"}
    # One-shot: the next create is answered.
    again = _create(http, emu, file_id)
    assert again.status_code == 200 and len(emu.batches) == 5
    # The client's scan by metadata has to page past the newer ones.
    page = http.get(batches_url(emu), params={"limit": "2"}, headers={"api-key": emu.api_key}).json()
    assert mine["id"] not in [item["id"] for item in page["data"]] and page["has_more"]


def test_lost_create_of_a_refused_batch_creates_nothing(emu: Emulator, http: requests.Session) -> None:
    emu.lose_next_batch_create(newer_batches=2)
    with pytest.raises(requests.exceptions.ConnectionError):
        _create(http, emu, "file-missing")
    assert emu.batches == []


def test_thousand_line_batch_runs_each_line_once(emu: Emulator, http: requests.Session) -> None:
    batch = _start(http, emu, batch_jsonl(1000))
    for _ in range(40):
        emu.advance(0.3)
        _get(http, emu, batch["id"])
    done = _get(http, emu, batch["id"])
    assert done["status"] == "completed"
    output = _lines(emu, done["output_file_id"])
    assert sorted(line["custom_id"] for line in output) == sorted(f"task-{i}" for i in range(1000))


def test_batches_need_data_plane_auth_and_every_kind_is_recorded(emu: Emulator, http: requests.Session) -> None:
    file_id = emu.add_file(batch_jsonl(1))
    assert _create(http, emu, file_id).status_code == 200
    unauthorized = http.post(batches_url(emu), json={}, headers={"api-key": "0" * 32})
    assert unauthorized.status_code == 401
    token = secret_token(http, emu, DATA_SCOPE)
    bearer = {"Authorization": f"Bearer {token}"}
    emu.clear_requests()
    batch_id = http.post(
        batches_url(emu),
        json={"input_file_id": file_id, "endpoint": "/chat/completions", "completion_window": "24h"},
        headers=bearer,
    ).json()["id"]
    http.get(batches_url(emu, f"/{batch_id}"), headers=bearer)
    http.get(batches_url(emu), headers=bearer)
    http.post(batches_url(emu, f"/{batch_id}/cancel"), headers=bearer)
    http.get(f"{emu.url}/openai/files?api-version=2024-10-21", headers=bearer)
    http.get(f"{emu.url}/openai/files/{file_id}?api-version=2024-10-21", headers=bearer)
    http.get(f"{emu.url}/openai/files/{file_id}/content?api-version=2024-10-21", headers=bearer)
    http.post(
        f"{emu.url}/openai/files?api-version=2024-10-21",
        headers=bearer,
        data={"purpose": "batch"},
        files={"file": ("a.jsonl", b"{}\n")},
    )
    http.delete(f"{emu.url}/openai/files/{file_id}?api-version=2024-10-21", headers=bearer)
    assert [(r.kind, r.status, r.client_id) for r in emu.requests] == [
        ("batches.create", 200, emu.client_id),
        ("batches.get", 200, emu.client_id),
        ("batches.list", 200, emu.client_id),
        ("batches.cancel", 200, emu.client_id),
        ("files.list", 200, emu.client_id),
        ("files.get", 200, emu.client_id),
        ("files.content", 200, emu.client_id),
        ("files.upload", 201, emu.client_id),
        ("files.delete", 200, emu.client_id),
    ]


def test_the_clock(emu: Emulator) -> None:
    start = emu.clock.now()
    assert start == int(start) and abs(start - time.time()) < 5
    assert emu.advance(1.5) == start + 1.5 == emu.clock.now()
    with pytest.raises(ValueError):
        emu.advance(-1)
    emu.clock.running = True
    assert emu.clock.running
    time.sleep(0.01)
    moved = emu.clock.now()
    assert moved > start + 1.5
    emu.clock.running = False
    frozen = emu.clock.now()
    assert frozen >= moved and emu.clock.now() == frozen


def test_a_clock_started_in_the_past_dates_what_is_created(ca) -> None:
    two_days_ago = time.time() - 48 * 3600
    with Emulator(ca=ca, clock_start=two_days_ago) as emu:
        assert emu.clock.now() == int(two_days_ago)
        file_id = emu.add_file("{}\n")
        assert emu.file(file_id)["created_at"] == int(two_days_ago)
    with pytest.raises(ValueError, match="finite Unix time"):
        Emulator(clock_start=float("nan"))
