"""Per-row results of a batch run (§G): what a row is, and the rows of any run written in input order.

A result row is made from one line of an output or error file (``RowBuilder``). The
``results`` output joins them in memory (``batch_join``). ``write_jsonl`` writes rows of any
number with bounded memory: Azure writes result lines in any order, so each shard's output
and error files are streamed to a scratch directory and indexed (custom_id to byte offset; an
array by row number when every custom_id is the default ``row-{index}``); then rows come out
in input order, each result line read and parsed once. The input order comes from the RunId
for default custom_ids, else from the shard's input file, streamed the same way.
"""

from __future__ import annotations

import array
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Any, Final

import attrs

from ..errors import AzureServiceError
from ..files import FilesApi
from ..redaction import MASK, Redactor
from . import chat_options

SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CONTENT_FILTERED: Final = "content_filtered"
MISSING: Final = "missing"
ROW_STATUSES: Final = (SUCCEEDED, FAILED, CONTENT_FILTERED, MISSING)
TOKEN_KEYS: Final = ("prompt_tokens", "completion_tokens", "total_tokens")
COUNT_OUTPUTS: Final = {status: f"{status}_count" for status in ROW_STATUSES}
#: Every output §G adds, present on every read (null until the run has ended).
RESULT_OUTPUTS: Final = (
    "results",
    *COUNT_OUTPUTS.values(),
    *TOKEN_KEYS,
    "output_file_ids",
    "error_file_ids",
)
#: What a row's JSON may add to its result line: its keys and the values of its own (a status, an error).
ROW_KEYS_BYTES: Final = 256
CUSTOM_ID: Final = re.compile(rb'"custom_id"\s*:\s*"((?:[^"\\]|\\.)*)"')
JSON_SPACE: Final = " \t\n\r"
_SCAN: Final = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]
DEFAULT_ID: Final = re.compile(r"row-(0|[1-9][0-9]{0,6})", re.ASCII)
#: What json.loads gives only for an escape such as \ud800 with no pair (a pair becomes one character).
LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class JoinUnavailable(Exception):
    """The rows cannot be aligned (an input file is gone); the message says which and why."""


@attrs.frozen
class ShardFiles:
    """What the join reads of one shard: where its rows start and its three files."""

    number: int
    first_row: int
    count: int
    input_file_id: str | None
    output_file_id: str | None
    error_file_id: str | None


@attrs.frozen
class JoinPlan:
    chat: bool
    #: Every custom_id is ``row-{index}``: the order needs no input file.
    default_ids: bool
    #: "n": no row asked for JSON, "j": every row did, "m": read each request to know.
    json_formats: str
    shards: tuple[ShardFiles, ...]

    @property
    def output_file_ids(self) -> list[str]:
        return [s.output_file_id for s in self.shards if s.output_file_id]

    @property
    def error_file_ids(self) -> list[str]:
        return [s.error_file_id for s in self.shards if s.error_file_id]


@attrs.define
class Tally:
    """Counts by row status and token sums, as the rows go by."""

    counts: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(ROW_STATUSES, 0))
    tokens: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(TOKEN_KEYS, 0))

    def add(self, row: dict[str, Any]) -> None:
        self.counts[row["status"]] += 1
        usage = row["usage"]
        if usage:
            tokens = self.tokens
            for key, value in usage.items():  # RowBuilder keeps only token counts in it
                tokens[key] += value

    def outputs(self) -> dict[str, Any]:
        return {**{COUNT_OUTPUTS[k]: v for k, v in self.counts.items()}, **self.tokens}


def empty_outputs() -> dict[str, Any]:
    """The §G outputs before the run has ended."""
    return dict.fromkeys(RESULT_OUTPUTS)


def write_jsonl(plan: JoinPlan, files: FilesApi, handle: IO[bytes], redact: Redactor) -> Tally:
    """Every row as one JSON line, streamed to ``handle``."""
    tally = Tally()
    for row, _ in iter_rows(plan, files, redact):
        tally.add(row)
        handle.write(row_json(row) + b"\n")
    return tally


def row_json(row: dict[str, Any]) -> bytes:
    """A row as UTF-8 JSON; a lone surrogate, which UTF-8 cannot carry (an input file may hold one
    as ``\\ud800``), is written as JSON's escape, as its line had it: the row reads back the same and
    takes no more bytes for it than its line did (the results bound in ``batch_join`` relies on it)."""
    text = json.dumps(row, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return LONE_SURROGATE.sub(_escape, text).encode("utf-8")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def iter_rows(plan: JoinPlan, files: FilesApi, redact: Redactor) -> Iterator[tuple[dict[str, Any], int]]:
    """(one result object per input request, in input order, the size of its result line)."""
    builder = RowBuilder(plan.chat, redact)
    for shard in plan.shards:
        with tempfile.TemporaryDirectory(prefix="polysync-join-") as scratch:
            yield from _shard_rows(plan, shard, files, Path(scratch), builder)


def _download(files: FilesApi, file_id: str, scratch: Path, what: str) -> Path:
    with gone_is_unavailable(file_id, what):
        return files.download(file_id, scratch)[0]


@contextmanager
def gone_is_unavailable(file_id: str, what: str) -> Iterator[None]:
    """A file Azure no longer has (404) as ``JoinUnavailable`` naming it; any other failure as it is."""
    try:
        yield
    except AzureServiceError as exc:
        if exc.detail.status == 404:
            raise JoinUnavailable(f"{what} {file_id} is gone ({exc.detail.describe()})") from None
        raise


def _shard_rows(
    plan: JoinPlan, shard: ShardFiles, files: FilesApi, scratch: Path, builder: RowBuilder
) -> Iterator[tuple[dict[str, Any], int]]:
    sources: list[IO[bytes]] = []
    try:
        by_number: array.array[int] | None = array.array("q", bytes(8 * shard.count)) if plan.default_ids else None
        by_id: dict[str, int] = {}
        for file_id, what in ((shard.output_file_id, "output file"), (shard.error_file_id, "error file")):
            if file_id is None:
                continue
            handle = _download(files, file_id, scratch, f"shard {shard.number}'s {what}").open("rb")
            sources.append(handle)
            _index(handle, len(sources), shard, by_number, by_id)

        def result(custom_id: str, code: int, wants_json: bool) -> tuple[dict[str, Any], int]:
            if code == 0:
                return builder.missing(custom_id), 0
            source = sources[(code >> 40) - 1]
            source.seek(code & ((1 << 40) - 1))
            raw = source.readline()
            return builder.row(custom_id, parse_line(raw), wants_json), len(raw)

        if by_number is not None and plan.json_formats != "m":
            wants_json = plan.json_formats == "j"
            for k in range(shard.count):
                yield result(f"row-{shard.first_row + k}", by_number[k], wants_json)
            return
        if shard.input_file_id is None:
            raise JoinUnavailable(f"shard {shard.number}'s input file is unknown")
        with _download(files, shard.input_file_id, scratch, f"shard {shard.number}'s input file").open("rb") as inputs:
            for raw in inputs:
                if not raw.strip():
                    continue
                custom_id = custom_id_of(raw)
                if custom_id is None:
                    continue
                wants_json = plan.json_formats == "j" or (
                    plan.json_formats == "m" and b'"response_format"' in raw and asks_json(raw)
                )
                code = by_id.get(custom_id, 0) if by_number is None else _code_by_number(by_number, shard, custom_id)
                yield result(custom_id, code, wants_json)
    finally:
        for source in sources:
            source.close()


def _index(handle: IO[bytes], source: int, shard: ShardFiles, by_number: array.array[int] | None, by_id: dict[str, int]) -> None:
    """Where each custom_id's line is: (source << 40) | offset; the output file wins over the error file."""
    offset = 0
    for raw in handle:
        custom_id = custom_id_of(raw)
        code = (source << 40) | offset
        offset += len(raw)
        if custom_id is None:
            continue
        if by_number is not None:
            match = DEFAULT_ID.fullmatch(custom_id)
            position = int(match[1]) - shard.first_row if match else -1
            if 0 <= position < shard.count and by_number[position] == 0:
                by_number[position] = code
        else:
            by_id.setdefault(custom_id, code)


def _code_by_number(by_number: array.array[int], shard: ShardFiles, custom_id: str) -> int:
    match = DEFAULT_ID.fullmatch(custom_id)
    position = int(match[1]) - shard.first_row if match else -1
    return by_number[position] if 0 <= position < shard.count else 0


def custom_id_of(raw: bytes) -> str | None:
    match = CUSTOM_ID.search(raw)
    if match is None:
        return None
    text = match[1]
    try:
        return json.loads(b'"' + text + b'"') if b"\\" in text else text.decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        return None


def parse_line(raw: bytes) -> Any:
    """``json.loads(raw)``, with the work it does per call that a JSON Lines file does not need skipped.

    For a line that is an object alone on its line in strict UTF-8 (Azure writes nothing else)
    the decoder's scanner is called directly; anything else gets ``json.loads`` itself: the same
    value, or the same error.
    """
    try:
        text = raw.decode()
        value, end = _SCAN(text, 0)
    except (ValueError, StopIteration):
        return json.loads(raw)
    if end != len(text) and text[end:].strip(JSON_SPACE):
        return json.loads(raw)
    return value


def asks_json(raw: bytes) -> bool:
    try:
        line = json.loads(raw)
    except ValueError:
        return False
    body = line.get("body") if isinstance(line, dict) else None
    return isinstance(body, dict) and chat_options.wants_json(body)


class RowBuilder:
    """Result rows, their strings scrubbed as they are made; equal usage objects are shared.

    A run's rows mostly repeat a few token counts: one read-only ``usage`` object per distinct
    count keeps 100,000 rows from holding 100,000 copies.
    """

    def __init__(self, chat: bool, redact: Redactor) -> None:
        self.chat = chat
        self.redact = redact
        # The redactor's own substitution, without its two Python frames per string, and none at
        # all for a text too short to hold a secret (a custom_id, a finish_reason).
        self._sub: Callable[[str], str] = partial(redact.pattern.sub, MASK) if redact.pattern is not None else _same
        self._shortest = redact.shortest if redact.pattern is not None else sys.maxsize
        self._usages: dict[tuple[int | None, ...], dict[str, int]] = {}

    def missing(self, custom_id: str) -> dict[str, Any]:
        return self.shape(custom_id, MISSING)

    def shape(
        self,
        custom_id: str,
        status: str,
        *,
        response: str | None = None,
        response_json: Any = None,
        embedding: Any = None,
        finish_reason: str | None = None,
        usage: dict[str, int] | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A result row: chat rows carry ``response_json``, embedding rows ``embedding``."""
        sub, shortest = self._sub, self._shortest
        row: dict[str, Any] = {
            "custom_id": custom_id if len(custom_id) < shortest else sub(custom_id),
            "status": status,
            "response": response if response is None or len(response) < shortest else sub(response),
        }
        if self.chat:
            row["response_json"] = self.redact.value(response_json) if response_json is not None else None
        else:
            row["embedding"] = embedding
        row["finish_reason"] = finish_reason if finish_reason is None or len(finish_reason) < shortest else sub(finish_reason)
        row["usage"] = usage
        row["error"] = self.redact.value(error) if error is not None else None
        return row

    def _usage(self, body: dict[str, Any]) -> dict[str, int] | None:
        """The body's token counts (whole numbers only), as the one shared object of those counts."""
        usage = body.get("usage")
        if not isinstance(usage, dict):
            return None
        # JSON gives int or bool; a bool is no count.
        get = usage.get
        prompt, completion, total = get("prompt_tokens"), get("completion_tokens"), get("total_tokens")
        key = (
            prompt if type(prompt) is int else None,
            completion if type(completion) is int and self.chat else None,
            total if type(total) is int else None,
        )
        shared = self._usages.get(key)
        if shared is None:
            shared = self._usages[key] = {name: value for name, value in zip(TOKEN_KEYS, key, strict=True) if value is not None}
        return shared

    def row(self, custom_id: str, line: Any, wants_json: bool) -> dict[str, Any]:
        """One result row from a line of an output or error file (wire-samples §7)."""
        chat = self.chat
        response = line.get("response") if isinstance(line, dict) else None
        if not isinstance(response, dict):
            return self.shape(custom_id, FAILED, error=_error(line.get("error") if isinstance(line, dict) else None))
        raw_body = response.get("body")
        body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
        if response.get("status_code") != 200:
            error = _error(body.get("error"))
            return self.shape(custom_id, CONTENT_FILTERED if error["code"] == "content_filter" else FAILED, error=error)
        usage = self._usage(body)
        if not chat:
            data = body.get("data")
            items = [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
            first = next((d for d in items if d.get("index") == 0), items[0] if items else {})
            vector = first.get("embedding")
            if not isinstance(vector, list):
                no_vector = {"code": "UnexpectedResponse", "message": "no embedding"}
                return self.shape(custom_id, FAILED, usage=usage, error=no_vector)
            return self.shape(custom_id, SUCCEEDED, embedding=vector, usage=usage)
        choices = body.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            content = None
        finish_reason = choice.get("finish_reason")
        if not isinstance(finish_reason, str):
            finish_reason = None
        if finish_reason == "content_filter":
            return self.shape(custom_id, CONTENT_FILTERED, response=content, finish_reason=finish_reason, usage=usage)
        parsed: Any = None
        if wants_json and content is not None:
            try:
                parsed = json.loads(content)
            except ValueError as exc:
                error = {"code": "invalid_json", "message": f"the answer is not valid JSON ({exc})"}
                return self.shape(custom_id, FAILED, response=content, finish_reason=finish_reason, usage=usage, error=error)
        return self.shape(custom_id, SUCCEEDED, response=content, response_json=parsed, finish_reason=finish_reason, usage=usage)


def _error(value: Any) -> dict[str, Any]:
    error = value if isinstance(value, dict) else {}
    code, message = error.get("code"), error.get("message")
    return {"code": code if isinstance(code, str) else None, "message": message if isinstance(message, str) else None}


def _same(text: str) -> str:
    return text
