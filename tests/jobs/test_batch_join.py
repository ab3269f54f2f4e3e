"""The results join (second-release §G) on output and error files as Azure may write them: lines in
any order, a row in both files or twice in one, rows missing, lines that belong to no row. The
files are served by the emulator over TLS; both readers of the join (the ``results`` output and
``batch results --out``) must give the same rows."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest

from polysync_azure_openai.auth import redactor_for
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.files import FilesApi
from polysync_azure_openai.jobs.batch_join import joined_outputs
from polysync_azure_openai.jobs.batch_results import JoinPlan, ShardFiles, parse_line, row_json, write_jsonl
from polysync_azure_openai.platform import PlatformConfig

from ..conftest import sp_platform


def answer(custom_id: str, content: str = "fine", tokens: int = 3, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "batch_req_1",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": "r",
            "body": {
                "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": tokens - 1, "total_tokens": tokens},
            },
        },
        "error": None,
    }


def refused(custom_id: str, code: str = "server_error") -> dict[str, Any]:
    body = {"error": {"code": code, "message": f"{code} for {custom_id}"}}
    return {"id": "batch_req_2", "custom_id": custom_id, "response": {"status_code": 500, "body": body}, "error": None}


def lines(*items: dict[str, Any] | bytes) -> bytes:
    return b"".join(i if isinstance(i, bytes) else json.dumps(i, ensure_ascii=False).encode() + b"\n" for i in items)


def request(custom_id: str, prompt: str, response_format: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "d", "messages": [{"role": "user", "content": prompt}]}
    if response_format:
        body["response_format"] = {"type": response_format}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def stored(emu: Emulator, content: bytes, purpose: str = "batch_output") -> str:
    return emu.add_file(content, purpose=purpose, filename="f.jsonl", status="processed")


def join(emu: Emulator, plan: JoinPlan, max_bytes: int = 1 << 30) -> dict[str, Any]:
    """The outputs, after checking that the exported rows are the same rows."""
    config = PlatformConfig.from_host(sp_platform(emu))
    files = FilesApi(config)
    outputs, too_big = joined_outputs(plan, files, max_bytes, redactor_for(config))
    exported = io.BytesIO()
    tally = write_jsonl(plan, files, exported, redactor_for(config))
    rows = [json.loads(line) for line in exported.getvalue().splitlines()]
    assert too_big == (outputs["results"] is None)
    if not too_big:
        assert outputs["results"] == rows
    assert {k: v for k, v in outputs.items() if k.endswith("_count") or k.endswith("_tokens")} == tally.outputs()
    return {**outputs, "exported": rows}


def test_default_ids_in_any_order_over_two_shards(emu: Emulator) -> None:
    first = [answer(f"row-{i}", f"answer {i}", tokens=i + 2) for i in range(6)]
    random.Random(7).shuffle(first)
    output_1 = lines(
        *first[:3],
        b"\n",
        b'{"custom_id":"row-9", "broken": \n',  # no row of this shard: never read
        answer("row-40", "another shard's row"),
        *first[3:],
        answer("row-2", "a second line for row 2"),  # Azure's first line for a row counts
    )
    error_1 = lines(refused("row-3"), refused("row-7"))  # row 3 answered in the output file: that wins
    output_2 = lines(answer("row-9", "nine"), answer("row-7", "seven", finish="length"))
    error_2 = lines(refused("row-8", "content_filter"))
    plan = JoinPlan(
        chat=True,
        default_ids=True,
        json_formats="n",
        shards=(
            ShardFiles(1, 0, 7, None, stored(emu, output_1), stored(emu, error_1)),
            ShardFiles(2, 7, 4, None, stored(emu, output_2), stored(emu, error_2)),
        ),
    )
    out = join(emu, plan)
    results = out["results"]
    assert [r["custom_id"] for r in results] == [f"row-{i}" for i in range(11)]
    assert [r["status"] for r in results] == ["succeeded"] * 6 + [
        "missing",
        "succeeded",
        "content_filtered",
        "succeeded",
        "missing",
    ]
    assert [r["response"] for r in results[:6]] == [f"answer {i}" for i in range(6)]
    assert results[7]["finish_reason"] == "length" and results[8]["error"]["code"] == "content_filter"
    assert results[6] == {
        "custom_id": "row-6",
        "status": "missing",
        "response": None,
        "response_json": None,
        "finish_reason": None,
        "usage": None,
        "error": None,
    }
    assert out["succeeded_count"] == 8 and out["missing_count"] == 2 and out["content_filtered_count"] == 1
    assert out["total_tokens"] == sum(range(2, 8)) + 3 + 3


def test_own_ids_follow_the_input_file_with_json_asked_row_by_row(emu: Emulator) -> None:
    inputs = lines(
        request("é-1", "plain"),
        b"\r\n",
        request('quote"d', "answer in JSON", "json_object"),
        request("b", "text"),
        request("c", "in JSON please", "json_object"),
    )
    # The same ids as Azure may write them: escaped, in another order, lines ending in CRLF.
    output = (
        b'{"custom_id": "\\u00e9-1", "response": {"status_code": 200, "body": {"choices": [{"message": '
        b'{"content": "x"}, "finish_reason": "stop"}]}}}\r\n'
        + lines(answer("c", "not json"), answer('quote"d', '{"a": [1, 2]}'), answer("unknown", "no such row"))
    )
    plan = JoinPlan(True, False, "m", (ShardFiles(1, 0, 4, stored(emu, inputs, "batch"), stored(emu, output), None),))
    out = join(emu, plan)
    results = out["results"]
    assert [r["custom_id"] for r in results] == ["é-1", 'quote"d', "b", "c"]
    assert [r["status"] for r in results] == ["succeeded", "succeeded", "missing", "failed"]
    assert results[0]["response"] == "x" and results[0]["usage"] is None
    assert results[1]["response_json"] == {"a": [1, 2]}
    assert results[3]["error"]["code"] == "invalid_json" and results[3]["response"] == "not json"
    # An answer that is not the JSON asked for fails its row, but its tokens were spent: kept and counted.
    assert results[3]["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert (out["prompt_tokens"], out["completion_tokens"], out["total_tokens"]) == (2, 4, 6)


def test_a_0_1_0_file_run_with_an_id_twice_gives_both_rows_and_embeddings(emu: Emulator) -> None:
    inputs = lines(request("a", "x"), request("b", "y"), request("a", "z"))
    vector = {"index": 0, "embedding": [0.5, -0.25]}
    output = lines(
        {
            "custom_id": "b",
            "response": {"status_code": 200, "body": {"data": [vector], "usage": {"prompt_tokens": 2, "total_tokens": 2}}},
        },
        {"custom_id": "a", "response": {"status_code": 200, "body": {"data": []}}},
    )
    plan = JoinPlan(False, False, "m", (ShardFiles(1, 0, 3, stored(emu, inputs, "batch"), stored(emu, output), None),))
    out = join(emu, plan)
    assert [(r["custom_id"], r["status"]) for r in out["results"]] == [("a", "failed"), ("b", "succeeded"), ("a", "failed")]
    assert out["results"][1]["embedding"] == [0.5, -0.25] and out["results"][1]["usage"] == {
        "prompt_tokens": 2,
        "total_tokens": 2,
    }
    assert out["results"][0]["error"] == {"code": "UnexpectedResponse", "message": "no embedding"}


def test_an_embedding_row_takes_the_item_of_index_0_wherever_the_answer_lists_it(emu: Emulator) -> None:
    data = [{"index": 1, "embedding": [9.0]}, {"index": 0, "embedding": [0.5, -0.25]}]
    output = lines({"custom_id": "row-0", "response": {"status_code": 200, "body": {"data": data}}})
    plan = JoinPlan(False, True, "n", (ShardFiles(1, 0, 1, None, stored(emu, output), None),))
    (row,) = join(emu, plan)["results"]
    assert (row["status"], row["embedding"]) == ("succeeded", [0.5, -0.25])


def test_an_embedding_answer_without_a_vector_fails_its_row_and_keeps_its_usage(emu: Emulator) -> None:
    """Azure answered 200 and billed the input, but no item holds a vector: the row failed, and its
    tokens are still the row's and count in the run's sums."""
    usage = {"prompt_tokens": 4, "total_tokens": 4}
    body = {"data": [{"index": 0, "embedding": None}], "usage": usage}
    output = lines({"custom_id": "row-0", "response": {"status_code": 200, "body": body}})
    plan = JoinPlan(False, True, "n", (ShardFiles(1, 0, 1, None, stored(emu, output), None),))
    outputs = join(emu, plan)
    (row,) = outputs["results"]
    assert (row["status"], row["error"]) == ("failed", {"code": "UnexpectedResponse", "message": "no embedding"})
    assert row["usage"] == usage
    assert (outputs["failed_count"], outputs["prompt_tokens"], outputs["total_tokens"]) == (1, 4, 4)


@pytest.mark.parametrize(
    ("chat", "usage"),
    [
        (True, {"prompt_tokens": 2, "completion_tokens": True, "total_tokens": 2}),  # a bool is no count
        (True, {"prompt_tokens": 2, "completion_tokens": "5", "total_tokens": 2}),  # nor is a text
        (False, {"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2}),  # an embedding completes nothing
    ],
    ids=["chat-bool", "chat-text", "embedding"],
)
def test_a_rows_usage_keeps_only_the_token_counts_it_can_have(emu: Emulator, chat: bool, usage: dict[str, Any]) -> None:
    body: dict[str, Any] = {"usage": usage}
    if chat:
        body["choices"] = [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "x"}}]
    else:
        body["data"] = [{"index": 0, "embedding": [0.5]}]
    output = lines({"custom_id": "row-0", "response": {"status_code": 200, "body": body}})
    plan = JoinPlan(chat, True, "n", (ShardFiles(1, 0, 1, None, stored(emu, output), None),))
    (row,) = join(emu, plan)["results"]
    assert row["status"] == "succeeded"
    assert row["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


@pytest.mark.parametrize("room", [0, 1])
def test_results_are_null_exactly_when_their_json_passes_the_limit(emu: Emulator, room: int) -> None:
    output = lines(*(answer(f"row-{i}", "word " * i) for i in reversed(range(40))))
    plan = JoinPlan(True, True, "n", (ShardFiles(1, 0, 41, None, stored(emu, output), None),))
    whole = join(emu, plan)
    size = len(json.dumps(whole["results"], ensure_ascii=False).encode())
    limited = join(emu, plan, max_bytes=size - 1 + room)
    assert (limited["results"] is None) == (room == 0)
    assert limited["succeeded_count"] == 40 and limited["missing_count"] == 1
    assert limited["total_tokens"] == whole["total_tokens"] == 120


def compact(*items: dict[str, Any]) -> bytes:
    """Lines as Azure writes them: no space after ',' or ':' (a row's JSON has one after each)."""
    return b"".join(json.dumps(i, separators=(",", ":")).encode() + b"\n" for i in items)


def vector_line(custom_id: str, size: int) -> dict[str, Any]:
    data = [{"object": "embedding", "index": 0, "embedding": [round(0.001 * k - 0.5, 4) for k in range(size)]}]
    return {
        "custom_id": custom_id,
        "response": {"status_code": 200, "body": {"data": data, "usage": {"prompt_tokens": 2, "total_tokens": 2}}},
    }


@pytest.mark.parametrize("room", [0, 1])
@pytest.mark.parametrize("kind", ["embeddings", "json-answers", "json-answers-with-exponents", "missing-long-ids"])
def test_results_of_compact_lines_are_null_exactly_when_their_json_passes_the_limit(emu: Emulator, kind: str, room: int) -> None:
    """A row's JSON may be longer than its line: each ',' of a vector or of a JSON answer gets a space,
    a JSON answer is kept twice (as text and parsed), a number such as 1E15 is kept parsed as
    1000000000000000.0, and a missing row has no line at all but its custom_id (a control character
    takes 6 bytes in JSON). The limit still holds to the byte."""
    if kind == "embeddings":
        output = compact(*(vector_line(f"row-{i}", 1000) for i in range(20)))
        plan = JoinPlan(False, True, "n", (ShardFiles(1, 0, 20, None, stored(emu, output), None),))
    elif kind == "json-answers":
        answers = (answer(f"row-{i}", json.dumps(list(range(1000 + i)), separators=(",", ":"))) for i in range(20))
        plan = JoinPlan(True, True, "j", (ShardFiles(1, 0, 20, None, stored(emu, compact(*answers)), None),))
    elif kind == "json-answers-with-exponents":  # a model may write its numbers so: JSON allows it
        answers = (answer(f"row-{i}", "[" + ",".join(["1E15"] * (1000 + i)) + "]") for i in range(20))
        plan = JoinPlan(True, True, "j", (ShardFiles(1, 0, 20, None, stored(emu, compact(*answers)), None),))
    else:  # a file run's own custom_ids, long and escaped in JSON, of rows Azure never answered
        inputs = lines(*(request(f"{i}" + "\u0001" * 300, "x") for i in range(20)))
        output = compact(answer("0" + "\u0001" * 300))
        plan = JoinPlan(True, False, "n", (ShardFiles(1, 0, 20, stored(emu, inputs, "batch"), stored(emu, output), None),))
    whole = join(emu, plan)
    assert whole["succeeded_count"] == (1 if kind == "missing-long-ids" else 20)
    size = len(json.dumps(whole["results"], ensure_ascii=False).encode())
    limited = join(emu, plan, max_bytes=size - 1 + room)
    assert (limited["results"] is None) == (room == 0)
    assert limited["succeeded_count"] == whole["succeeded_count"]


def test_every_text_of_a_row_is_scrubbed_however_short(emu: Emulator) -> None:
    secret = emu.client_secret
    config = PlatformConfig.from_host(sp_platform(emu))
    assert redactor_for(config).shortest == len(secret)  # the plain form is the shortest: the edge case
    inputs = lines(request(secret, "x"), request("b", "y"))
    output = lines(answer(secret, f"echo {secret}", finish=secret), answer("b", secret[: len(secret) - 1]))
    plan = JoinPlan(True, False, "n", (ShardFiles(1, 0, 2, stored(emu, inputs, "batch"), stored(emu, output), None),))
    first, second = join(emu, plan)["results"]
    assert (first["custom_id"], first["response"], first["finish_reason"]) == ("***", "echo ***", "***")
    assert second["response"] == secret[:-1]  # too short to be the secret: left as it is


@pytest.mark.parametrize("seed", range(6))
def test_both_readers_agree_on_files_written_in_any_way(emu: Emulator, seed: int) -> None:
    """Files of random order, repeats, gaps, blank and CRLF lines, lines of no row and of other shapes."""
    rng = random.Random(seed)
    own_ids = seed % 2 == 1
    count = 30
    ids = [f'id {i} é"\\' if own_ids else f"row-{i}" for i in range(count)]
    inputs = lines(*(request(i, "in JSON" if rng.random() < 0.5 else "x", rng.choice([None, "json_object"])) for i in ids))

    def some_line(custom_id: str) -> dict[str, Any] | bytes:
        kind = rng.randrange(6)
        if kind == 0:
            return refused(custom_id, rng.choice(["server_error", "content_filter"]))
        if kind == 1:
            return {"custom_id": custom_id, "response": None, "error": {"code": "x", "message": "m"}}
        if kind == 2:
            return json.dumps([{"custom_id": custom_id}]).encode() + b"\r\n"  # not an object
        if kind == 3:
            return answer(custom_id, '{"ok": true}', finish=rng.choice(["stop", "content_filter", "length"]))
        return answer(custom_id, f"text {rng.random()}", tokens=rng.randrange(1, 9))

    def some_file() -> bytes:
        chosen = [rng.choice(ids) for _ in range(rng.randrange(count))] + ["stranger", "row-999"]
        items = [some_line(i) for i in chosen] + [b"\n", b"  \r\n", b'{"custom_id": "stranger", "cut\n']
        rng.shuffle(items)
        return lines(*items)

    plan = JoinPlan(
        True,
        not own_ids,
        rng.choice(["n", "j", "m"]),
        (ShardFiles(1, 0, count, stored(emu, inputs, "batch"), stored(emu, some_file()), stored(emu, some_file())),),
    )
    out = join(emu, plan)  # asserts that results and the exported rows are the same
    assert [r["custom_id"] for r in out["results"]] == ids
    assert sum(out[f"{s}_count"] for s in ("succeeded", "failed", "content_filtered", "missing")) == count


@pytest.mark.parametrize(
    ("after", "parsed"),
    [(b"", True), (b"\r", True), (b" \t\r", True), (b" x", False), (b"{}", False), (b"\r,", False)],
    ids=["nothing", "cr", "spaces", "a-word", "a-second-object", "a-comma"],
)
def test_a_result_line_with_text_after_its_object_is_read_exactly_as_json_loads_reads_it(
    emu: Emulator, after: bytes, parsed: bool
) -> None:
    """JSON whitespace after a row's object is fine; any other text fails the join with json.loads's own error."""
    raw = json.dumps(answer("row-0", "fine")).encode() + after
    plan = JoinPlan(True, True, "n", (ShardFiles(1, 0, 1, None, stored(emu, raw + b"\n"), None),))
    if parsed:
        assert parse_line(raw) == json.loads(raw)
        assert [r["status"] for r in join(emu, plan)["results"]] == ["succeeded"]
        return
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(raw)
    with pytest.raises(json.JSONDecodeError) as raised:
        parse_line(raw)
    assert str(raised.value) == str(expected.value)
    config = PlatformConfig.from_host(sp_platform(emu))
    with pytest.raises(json.JSONDecodeError) as joined:
        joined_outputs(plan, FilesApi(config), 1 << 30, redactor_for(config))
    assert str(joined.value) == str(expected.value)


def test_a_custom_id_utf8_cannot_carry_is_kept_exactly_and_exported_as_a_json_escape(emu: Emulator) -> None:
    """A file may name a row "a\\ud800" (JSON lets it escape a lone surrogate): the rows keep that id,
    the exported JSONL writes it as JSON's escape and every other text as UTF-8, and the results are
    null exactly when their JSON passes 'OpenAI Max Results MB'."""
    odd = "a\ud800"
    inputs = b"".join(json.dumps(request(i, "q")).encode() + b"\n" for i in (odd, "b"))
    # Azure writes the id as the escape it was given, and the answer's text as UTF-8.
    escaped = json.dumps(answer(odd, "café " * 200), ensure_ascii=False).replace("\ud800", "\\ud800")
    output = lines(answer("b"), escaped.encode() + b"\n")
    plan = JoinPlan(True, False, "n", (ShardFiles(1, 0, 2, stored(emu, inputs, "batch"), stored(emu, output), None),))
    out = join(emu, plan)  # the exported rows read back equal to the results
    assert [r["custom_id"] for r in out["results"]] == [odd, "b"]
    assert [r["status"] for r in out["results"]] == ["succeeded", "succeeded"]
    config = PlatformConfig.from_host(sp_platform(emu))
    exported = io.BytesIO()
    write_jsonl(plan, FilesApi(config), exported, redactor_for(config))
    first = exported.getvalue().split(b"\n")[0]
    assert first.startswith(b'{"custom_id": "a\\ud800", "status": "succeeded", "response": "caf\xc3\xa9 caf')
    exported.getvalue().decode("utf-8")  # the file is UTF-8 throughout
    measured = sum(len(row_json(r)) + 2 for r in out["results"])  # the list's JSON: ", " between, [] around
    for limit, kept in ((measured, True), (measured - 1, False)):
        outputs, too_big = joined_outputs(plan, FilesApi(config), limit, redactor_for(config))
        assert too_big is not kept and (outputs["results"] is not None) is kept
