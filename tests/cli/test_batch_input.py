"""The batch input check: every problem Azure would refuse, found locally with its line number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polysync_azure_openai.cli.batch_input import MAX_REQUESTS, validate_file, validate_lines
from polysync_azure_openai.errors import ConfigurationError


def line(custom_id: str = "task-0", **overrides: object) -> str:
    request: dict[str, object] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/chat/completions",
        "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "Hi?"}]},
    }
    request.update(overrides)
    return json.dumps(request)


def lines(*texts: str) -> list[bytes]:
    return [(t + "\n").encode("utf-8") for t in texts]


def check(raw: list[bytes], **options: str) -> list[tuple[int | None, str]]:
    report = validate_lines(raw, source="input.jsonl", **options)  # type: ignore[arg-type]
    return [(p.line, p.message) for p in report.problems]


GOOD = line("task-1")

BAD_FILES = [
    pytest.param(lines(GOOD, "{not json"), [(2, "is not valid JSON (Expecting property name")], id="invalid-json"),
    pytest.param(lines(GOOD, line("task-1")), [(2, 'custom_id "task-1" is already used on line 1')], id="duplicate-custom-id"),
    pytest.param(lines(GOOD, line("")), [(2, 'custom_id is ""')], id="empty-custom-id"),
    pytest.param(lines(line("a", method="GET")), [(1, 'method is "GET"')], id="method-get"),
    pytest.param(
        lines(GOOD, line("b", url="/embeddings")),
        [(2, "url '/embeddings' differs from '/chat/completions' (line 1)")],
        id="url-mismatch",
    ),
    pytest.param(
        lines(line("a", url="/v2/chat/completions")),
        [(1, 'url is "/v2/chat/completions"; use /chat/completions or /embeddings (with /v1 in front for the v1 API)')],
        id="url-unknown",
    ),
    pytest.param(
        lines(line("a", url="/v1/chat/completions"), line("b")),
        [(2, "url '/chat/completions' differs from '/v1/chat/completions' (line 1)")],
        id="url-forms-mixed",
    ),
    pytest.param(
        lines(GOOD, line("b", body={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})),
        [(2, "body.model 'gpt-4o' differs from 'gpt-4o-batch' (line 1)")],
        id="two-models",
    ),
    pytest.param(
        lines(line("a", body={"messages": [{"role": "user", "content": "x"}]})), [(1, "body.model is missing")], id="no-model"
    ),
    pytest.param(lines(line("a", body="text")), [(1, 'body is "text"')], id="body-not-object"),
    pytest.param(
        lines(line("a", body={"model": "gpt-4o-batch"})), [(1, "body.messages is missing or empty")], id="chat-no-messages"
    ),
    pytest.param(lines(GOOD, "", line("b")), [(2, "is empty")], id="blank-line"),
    pytest.param(lines("[1, 2]"), [(1, "is a JSON array, not an object")], id="array"),
    pytest.param(
        lines(line("a", body={"model": "gpt-4o-batch", "messages": [], "temperature": float("nan")})),
        [(1, "NaN is not valid JSON")],
        id="nan",
    ),
    pytest.param([b"\xef\xbb\xbf" + GOOD.encode() + b"\n"], [(1, "byte order mark (BOM)")], id="bom"),
    pytest.param([GOOD.encode() + b"\n", b'{"custom_id": "caf\xe9"}\n'], [(2, "is not valid UTF-8 (byte 0xe9")], id="latin-1"),
    pytest.param([], [(None, "the file has no requests")], id="empty-file"),
]


@pytest.mark.parametrize(("raw", "expected"), BAD_FILES)
def test_each_problem_is_reported_with_its_line(raw: list[bytes], expected: list[tuple[int | None, str]]) -> None:
    found = check(raw)
    assert [n for n, _ in found] == [n for n, _ in expected], found
    for (_, message), (_, fragment) in zip(found, expected, strict=True):
        assert fragment in message


def test_a_good_file_passes_and_reports_endpoint_and_model() -> None:
    report = validate_lines(lines(*(line(f"task-{i}") for i in range(5))), source="in.jsonl")
    assert report.ok and report.requests == 5
    assert (report.endpoint, report.model) == ("/chat/completions", "gpt-4o-batch")


@pytest.mark.parametrize("url", ["/v1/chat/completions", "/v1/embeddings"])
def test_the_v1_apis_urls_pass(url: str) -> None:
    body = {"model": "m", "input": "x"} if url.endswith("embeddings") else {"model": "m", "messages": [{"role": "user"}]}
    report = validate_lines(lines(line("a", url=url, body=body)), source="in.jsonl")
    assert report.ok and report.endpoint == url


def test_v1_embeddings_lines_need_input_too() -> None:
    assert check(lines(line("a", url="/v1/embeddings", body={"model": "m"}))) == [
        (1, "body.input is missing or empty; an embeddings request needs the text to embed")
    ]


def test_embeddings_lines_need_input() -> None:
    body = {"model": "embed-batch", "input": ""}
    assert check(lines(line("a", url="/embeddings", body=body))) == [
        (1, "body.input is missing or empty; an embeddings request needs the text to embed")
    ]


def test_endpoint_and_deployment_options_bind_every_line() -> None:
    found = check(lines(GOOD), endpoint="/embeddings", deployment="other-batch")
    assert [n for n, _ in found] == [1, 1]
    assert "differs from '/embeddings' (the batch endpoint given)" in found[0][1]
    assert "differs from 'other-batch' (the deployment given)" in found[1][1]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [({"endpoint": "/completions"}, "Batch endpoint '/completions'"), ({"deployment": "a/b"}, "is not a deployment name")],
)
def test_bad_options_are_configuration_errors(options: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        validate_lines([], source="x", **options)  # type: ignore[arg-type]


def test_the_request_limit() -> None:
    raw = (
        f'{{"custom_id":"t{i}","method":"POST","url":"/chat/completions","body":{{"model":"m","messages":[1]}}}}\n'.encode()
        for i in range(MAX_REQUESTS + 2)
    )
    report = validate_lines(raw, source="big.jsonl")
    assert [(p.line, p.message[:30]) for p in report.problems] == [(MAX_REQUESTS + 1, "is request 100,001: Azure take")]


def test_problems_beyond_the_limit_are_counted_not_kept() -> None:
    report = validate_lines(lines(*["{"] * 30), source="x", max_problems=5)
    assert len(report.problems) == 5 and report.more_problems == 25


def test_validate_file_reads_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(GOOD + "\n" + GOOD + "\n", encoding="utf-8")
    report = validate_file(path)
    assert report.source == str(path) and report.size == path.stat().st_size
    assert [p.line for p in report.problems] == [2]
    with pytest.raises(ConfigurationError, match="cannot be read"):
        validate_file(tmp_path / "missing.jsonl")
