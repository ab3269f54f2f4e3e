"""The RunId codec: every form 0.1.0 issued still decodes; nothing it never issued does."""

from __future__ import annotations

import pytest

from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.jobs import BATCH, CHAT, run_ids


@pytest.mark.parametrize("status", ["Success", "Failed"])
def test_a_sync_run_id_round_trips(status: str) -> None:
    run_id = run_ids.local("gpt-4o", run_ids.SYNC, status)
    assert run_id == f"gpt-4o#sync#{status}"
    assert run_ids.decode_sync(run_id, CHAT) == run_ids.LocalRunId("gpt-4o", "sync", status)
    assert run_ids.is_sync_run_id(run_id) and not run_ids.is_batch_run_id(run_id)
    assert run_ids.deployment_of(run_id) == "gpt-4o"


def test_a_failed_batch_submit_round_trips() -> None:
    run_id = run_ids.local("gpt-4o-batch", run_ids.LOCAL_BATCH, "Failed")
    assert run_id == "gpt-4o-batch#batch#Failed"
    assert run_ids.decode_batch(run_id, BATCH) == run_ids.LocalRunId("gpt-4o-batch", "batch", "Failed")
    assert run_ids.is_batch_run_id(run_id) and not run_ids.is_sync_run_id(run_id)


def test_a_batch_id_is_its_own_run_id() -> None:
    assert run_ids.decode_batch("batch_6a1f-0c_2", BATCH) == "batch_6a1f-0c_2"
    assert run_ids.is_batch_run_id("batch_6a1f-0c_2")
    assert run_ids.deployment_of("batch_6a1f-0c_2") is None


def test_a_batch_success_is_never_issued() -> None:
    with pytest.raises(ValueError, match="never issued"):
        run_ids.local("gpt-4o", run_ids.LOCAL_BATCH, "Success")


@pytest.mark.parametrize(
    "run_id",
    [
        "gpt-4o#batch#Success",  # never issued
        "gpt-4o#sync#Success",  # another job type's
        "gpt-4o#batch#Failed#x",
        "#batch#Failed",
        "..#batch#Failed",
        "a" * 65 + "#batch#Failed",
        "batch_",
        "batch_a/b",
        "",
        None,
        5,
    ],
)
def test_batch_run_ids_it_never_issued_are_refused_with_the_forms_it_issues(run_id: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        run_ids.decode_batch(run_id, BATCH)
    expected = str(info.value).partition("expected")[2]
    assert "'batch_...'" in expected and "'<deployment>#batch#Failed'" in expected
    assert "#batch#Success" not in expected


@pytest.mark.parametrize("run_id", ["gpt-4o#batch#Failed", "batch_abc", "gpt-4o#sync#Running", "gpt 4o#sync#Success", None])
def test_sync_run_ids_it_never_issued_are_refused(run_id: object) -> None:
    with pytest.raises(ConfigurationError, match="'<deployment>#sync#Success' or '<deployment>#sync#Failed'"):
        run_ids.decode_sync(run_id, CHAT)
