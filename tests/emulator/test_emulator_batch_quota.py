"""The enqueued-token quota of batch deployments (wire-samples §8), Azure's Date on the emulator's
clock, and the faults batch clients need: a lost upload answer, a clock that moves per request."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests

from polysync_azure_openai.emulator import Emulator

from .emulator_helpers import batch_jsonl, batches_url, files_url

# "Question number N?" is three words: three prompt tokens a line.
LINE_TOKENS = 3


def _create(http: requests.Session, emu: Emulator, lines: int, **metadata: str) -> requests.Response:
    body = {
        "input_file_id": emu.add_file(batch_jsonl(lines)),
        "endpoint": "/chat/completions",
        "completion_window": "24h",
        "metadata": metadata or None,
    }
    return http.post(batches_url(emu), json=body, headers={"api-key": emu.api_key})


def _get(http: requests.Session, emu: Emulator, batch_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = http.get(batches_url(emu, f"/{batch_id}"), headers={"api-key": emu.api_key}).json()
    return answer


def test_a_batch_over_the_quota_fails_validation_with_token_limit_exceeded(emu: Emulator, http: requests.Session) -> None:
    emu.batch_timing.requests_per_second = 1
    emu.set_batch_token_quota("gpt-4o-batch", 25 * LINE_TOKENS)
    first = _create(http, emu, 20).json()
    second = _create(http, emu, 10).json()
    emu.advance(1.5)  # both validated, the older first
    assert _get(http, emu, first["id"])["status"] == "in_progress"
    refused = _get(http, emu, second["id"])
    assert refused["status"] == "failed" and refused["request_counts"]["total"] == 10
    (error,) = refused["errors"]["data"]
    assert error["code"] == "token_limit_exceeded" and error["line"] is None
    assert error["message"].startswith("Enqueued token limit reached for gpt-4o-batch in model gpt-4o-2024-08-06")
    assert "Limit: 75 enqueued tokens" in error["message"]
    assert emu.enqueued_tokens("gpt-4o-batch") == 20 * LINE_TOKENS
    # Once the first batch has run its lines its tokens are free: the same batch fits.
    emu.advance(60)
    assert emu.enqueued_tokens("gpt-4o-batch") == 0
    again = _create(http, emu, 10).json()
    emu.advance(1.5)
    assert _get(http, emu, again["id"])["status"] == "in_progress"


def test_the_order_of_reads_does_not_change_who_fits(emu: Emulator, http: requests.Session) -> None:
    emu.batch_timing.requests_per_second = 1
    emu.set_batch_token_quota("gpt-4o-batch", 25 * LINE_TOKENS)
    first = _create(http, emu, 20).json()
    second = _create(http, emu, 10).json()
    emu.advance(1.5)
    assert _get(http, emu, second["id"])["status"] == "failed"  # read first, validated second
    assert _get(http, emu, first["id"])["status"] == "in_progress"


def test_a_fail_fast_region_refuses_the_create_itself(emu: Emulator, http: requests.Session) -> None:
    emu.set_batch_token_quota("gpt-4o-batch", 25 * LINE_TOKENS, fail_fast=True)
    assert _create(http, emu, 20).status_code == 200
    refused = _create(http, emu, 10)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "token_limit_exceeded" and "Enqueued token limit reached" in error["message"]
    assert len(emu.batches) == 1
    assert _create(http, emu, 5).status_code == 200  # 25 lines fit exactly


def test_cancelling_frees_the_quota(emu: Emulator, http: requests.Session) -> None:
    emu.set_batch_token_quota("gpt-4o-batch", 25 * LINE_TOKENS, fail_fast=True)
    first = _create(http, emu, 20).json()
    assert http.post(batches_url(emu, f"/{first['id']}/cancel"), headers={"api-key": emu.api_key}).status_code == 200
    assert _create(http, emu, 20).status_code == 200


@pytest.mark.parametrize("tokens", [0, -1, 1.5, True])
def test_a_quota_is_a_positive_number_of_tokens(emu: Emulator, tokens: Any) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        emu.set_batch_token_quota("gpt-4o-batch", tokens)


def test_the_date_header_tells_the_emulators_clock(emu: Emulator, http: requests.Session) -> None:
    emu.advance(3 * 24 * 3600)
    response = http.get(files_url(emu), headers={"api-key": emu.api_key})
    told = parsedate_to_datetime(response.headers["Date"]).timestamp()
    assert told == int(emu.clock.now())


def test_the_clock_can_move_with_every_request(emu: Emulator, http: requests.Session) -> None:
    emu.clock_step_per_request = 30
    start = emu.clock.now()
    for _ in range(3):
        http.get(files_url(emu), headers={"api-key": emu.api_key})
    assert emu.clock.now() == start + 90
    with pytest.raises(ValueError, match="clock_step_per_request"):
        emu.clock_step_per_request = -1


def test_a_lost_upload_answer_leaves_the_file_stored(emu: Emulator, http: requests.Session) -> None:
    emu.lose_next_upload()
    with pytest.raises(requests.ConnectionError):
        http.post(
            files_url(emu),
            files={"file": ("named.jsonl", batch_jsonl(1).encode())},
            data={"purpose": "batch"},
            headers={"api-key": emu.api_key},
        )
    (stored,) = [f for f in emu.file_listing() if f["filename"] == "named.jsonl"]
    listing = http.get(files_url(emu), params={"purpose": "batch"}, headers={"api-key": emu.api_key}).json()
    assert stored["id"] in [f["id"] for f in listing["data"]]
