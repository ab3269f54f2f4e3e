"""The RunId codec: every form 0.1.0 issued still decodes; nothing it never issued does."""

from __future__ import annotations

from pathlib import Path

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


ROWS_EXAMPLE = "gpt-4o-batch#rows#/chat/completions#24h#1722476551#300,300,300,100#dn#host-run-77"


def test_the_rows_form_of_the_readme_decodes() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    v1_example = ROWS_EXAMPLE.replace("#/chat/", "#/v1/chat/")
    assert f"`{v1_example}`" in readme
    assert run_ids.decode_batch(v1_example, BATCH).url == "/v1/chat/completions"  # type: ignore[union-attr]
    decoded = run_ids.decode_batch(ROWS_EXAMPLE, BATCH)
    assert decoded == run_ids.RowsRunId(
        "gpt-4o-batch", "/chat/completions", "24h", 1722476551, (300, 300, 300, 100), "dn", "host-run-77"
    )
    assert isinstance(decoded, run_ids.RowsRunId)
    assert (decoded.shards, decoded.rows, decoded.first_row(4), decoded.default_ids, decoded.json_formats) == (
        4,
        1000,
        900,
        True,
        "n",
    )
    assert str(decoded) == ROWS_EXAMPLE
    assert run_ids.is_batch_run_id(ROWS_EXAMPLE) and run_ids.deployment_of(ROWS_EXAMPLE) == "gpt-4o-batch"


@pytest.mark.parametrize("run_key", ["k", "run/1 #2 %41 ünï 🙂", "k" * 512])
def test_any_run_key_round_trips(run_key: str) -> None:
    run_id = run_ids.RowsRunId("d", "/embeddings", "24h", 1, (1,), "cm", run_key)
    assert run_ids.decode_batch(str(run_id), BATCH) == run_id


def test_a_rows_run_id_of_exactly_1024_characters_decodes() -> None:
    short = run_ids.RowsRunId("d", "/embeddings", "24h", 1, (1,), "cm", "k")
    room = 1024 - len(str(short)) + 1
    run_id = run_ids.RowsRunId("d", "/embeddings", "24h", 1, (1,), "cm", "é" * (room // 6) + "k" * (room % 6))
    assert len(str(run_id)) == 1024
    assert run_ids.decode_batch(str(run_id), BATCH) == run_id


@pytest.mark.parametrize(
    "run_id",
    [
        ROWS_EXAMPLE.replace("/chat/completions", "/v2/chat"),  # a url it never writes
        ROWS_EXAMPLE.replace("#24h#", "#24#"),
        ROWS_EXAMPLE.replace("#1722476551#", "#-1#"),
        ROWS_EXAMPLE.replace("300,300,300,100", ""),
        ROWS_EXAMPLE.replace("300,300,300,100", ",".join(["1"] * 21)),  # over 20 shards
        ROWS_EXAMPLE.replace("300,300,300,100", "100001"),
        ROWS_EXAMPLE.replace("#dn#", "#dx#"),
        ROWS_EXAMPLE.replace("host-run-77", ""),
        ROWS_EXAMPLE.replace("host-run-77", "a%2"),  # not percent-encoding the codec writes
        ROWS_EXAMPLE.replace("host-run-77", "%ED%A0%80"),  # a lone surrogate
        ROWS_EXAMPLE + "#x",
        ROWS_EXAMPLE.replace("gpt-4o-batch#", "gpt 4o#"),
        ROWS_EXAMPLE.replace("host-run-77", "k" * 1000),
        ROWS_EXAMPLE.replace("#rows#", "#sync#"),  # eight parts, but not the rows form
        ROWS_EXAMPLE.replace("host-run-77", "%C3%A9" * 168),  # a 168-character run_key, but 1,078 characters
    ],
)
def test_rows_run_ids_it_never_issued_are_refused(run_id: str) -> None:
    with pytest.raises(ConfigurationError, match=r"'<deployment>#rows#\.\.\.'"):
        run_ids.decode_batch(run_id, BATCH)
