"""The ``results`` output of an ended run (second-release §G): every row joined as its line arrives.

Azure writes result lines in any order, so each line of a shard's output file, then of its error
file, is parsed once as it is downloaded and its row is put in the slot of its input position
(the first line for a row wins). The slots left empty are the missing rows. Nothing goes through
a scratch file and no line is read twice: the rows kept are the output itself, and past
``OpenAI Max Results MB`` none are kept and only the counts go on. ``batch results --out``,
which writes rows of any number in order, reads through ``batch_results.write_jsonl`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

from ..files import FilesApi
from ..redaction import Redactor, Scrubbed
from .batch_results import (
    DEFAULT_ID,
    ROW_KEYS_BYTES,
    JoinPlan,
    JoinUnavailable,
    RowBuilder,
    ShardFiles,
    Tally,
    asks_json,
    custom_id_of,
    gone_is_unavailable,
    parse_line,
    row_json,
)


def joined_outputs(plan: JoinPlan, files: FilesApi, max_results_bytes: int, redact: Redactor) -> tuple[dict[str, Any], bool]:
    """The §G outputs of an ended run, and whether ``results`` was too big to keep.

    ``results`` is null when its JSON would pass ``max_results_bytes``; the counts and sums are
    always complete.
    """
    tally = Tally()
    kept = _Kept(max_results_bytes)
    builder = RowBuilder(plan.chat, redact)
    for shard in plan.shards:
        order = _order(plan, shard, files)
        kept.start(order.count)
        filled = bytearray(order.count)
        for file_id, what in ((shard.output_file_id, "output file"), (shard.error_file_id, "error file")):
            if file_id is not None:
                for lines in _lines(files, file_id, f"shard {shard.number}'s {what}"):
                    _join_lines(lines, order, filled, builder, tally, kept)
        position = filled.find(0)
        while position >= 0:
            custom_id = order.custom_id(position)
            row = builder.missing(custom_id)
            tally.add(row)
            # No line: its custom_id is its one text, at most 6 bytes a character in JSON ("\u0001").
            kept.put(position, row, 6 * len(custom_id))
            position = filled.find(0, position + 1)
        kept.finish()
    outputs = {
        "results": kept.rows,
        **tally.outputs(),
        "output_file_ids": plan.output_file_ids,
        "error_file_ids": plan.error_file_ids,
    }
    return outputs, kept.rows is None


def _join_lines(lines: list[bytes], order: _Order, filled: bytearray, builder: RowBuilder, tally: Tally, kept: _Kept) -> None:
    """Each line's row into its slots: the first line for a row wins. A line that does not parse fails
    the join only when it is the first for a row (as ``json.loads`` fails); else it is skipped."""
    # The loop runs once per result line: its calls are looked up once here.
    positions, wants_json_at = order.positions, order.wants_json
    row_of, add, put = builder.row, tally.add, kept.put
    for raw in lines:
        try:
            line = parse_line(raw)
        except ValueError:
            line, custom_id = None, custom_id_of(raw)
        else:
            custom_id = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(custom_id, str):
                custom_id = custom_id_of(raw)
        if custom_id is None:
            continue
        for position in positions(custom_id):
            if filled[position]:
                continue
            if line is None:
                parse_line(raw)  # the line its row needs does not parse: raise what the parser says
            filled[position] = 1
            # The line's custom_id is the input's: positions() matched it, as text.
            row = row_of(custom_id, line, wants_json_at(position))
            add(row)
            put(position, row, len(raw) + 1)


class _Kept:
    """The rows kept for ``results``, by input position, while their JSON stays within the limit.

    The size is bounded from the result lines' own sizes and measured exactly only once that
    bound passes the limit: most runs never serialise a row here. A row's JSON writes its texts
    in no more bytes than its line does, but adds a space after each ',' and ':' that Azure's
    compact line has none after: a vector's JSON may take twice its bytes in the line. A JSON
    answer is kept twice, as text and parsed, and parsed a number may take 4.5 times its text
    (``1E15`` is ``1000000000000000.0``): less than six times the line in all. So a row is
    bounded by its line once, twice with a vector, six times with a parsed answer, plus the keys.
    A list's JSON size does not depend on its order, so rows arriving in any order are counted
    as they come.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rows: Scrubbed | None = Scrubbed()
        self._slots: list[Any] = []
        self._bound = 2  # the brackets
        self._exact: int | None = None

    def start(self, count: int) -> None:
        self._slots = [None] * count if self.rows is not None else []

    def put(self, position: int, row: dict[str, Any], line_bytes: int) -> None:
        if self.rows is None:
            return
        self._slots[position] = row
        if self._exact is None:
            self._bound += line_bytes * _widening(row) + ROW_KEYS_BYTES
            if self._bound > self.limit:
                # JSON of a list: each row, and ", " or the brackets around it.
                self._exact = sum(_json_bytes(r) + 2 for r in (*self.rows, *self._slots) if r is not None)
        else:
            self._exact += _json_bytes(row) + 2
        if self._exact is not None and self._exact > self.limit:
            self.rows, self._slots = None, []  # dropped at once: memory stays bounded past the limit

    def finish(self) -> None:
        if self.rows is not None:
            self.rows.extend(self._slots)
        self._slots = []


def _widening(row: dict[str, Any]) -> int:
    """How many times its line's bytes a row's JSON may take (see ``_Kept``)."""
    if row.get("response_json") is not None:
        return 6
    return 2 if row.get("embedding") is not None else 1


def _json_bytes(row: dict[str, Any]) -> int:
    return len(row_json(row))


class _Order:
    """A shard's rows in input order: their custom_ids, and which asked for a JSON answer."""

    def __init__(self, shard: ShardFiles, wants_json: bool) -> None:
        self.first_row = shard.first_row
        self.count = shard.count
        self._wants_json = wants_json

    def positions(self, custom_id: str) -> tuple[int, ...]:
        match = DEFAULT_ID.fullmatch(custom_id)
        position = int(match[1]) - self.first_row if match else -1
        return (position,) if 0 <= position < self.count else ()

    def custom_id(self, position: int) -> str:
        return f"row-{self.first_row + position}"

    def wants_json(self, position: int) -> bool:
        return self._wants_json


class _InputOrder(_Order):
    """The order of a shard's input file: its own custom_ids (one may come twice in a 0.1.0 file)."""

    def __init__(self, shard: ShardFiles, ids: list[str], wants: bytearray) -> None:
        super().__init__(shard, False)
        self.count = len(ids)
        self._ids = ids
        self._wants = wants
        self._first: dict[str, int] = {}
        self._more: dict[str, tuple[int, ...]] = {}
        for position, custom_id in enumerate(ids):
            first = self._first.setdefault(custom_id, position)
            if first != position:
                self._more[custom_id] = (*self._more.get(custom_id, ()), position)

    def positions(self, custom_id: str) -> tuple[int, ...]:
        first = self._first.get(custom_id)
        if first is None:
            return ()
        return (first, *self._more[custom_id]) if custom_id in self._more else (first,)

    def custom_id(self, position: int) -> str:
        return self._ids[position]

    def wants_json(self, position: int) -> bool:
        return bool(self._wants[position])


def _order(plan: JoinPlan, shard: ShardFiles, files: FilesApi) -> _Order:
    if plan.default_ids and plan.json_formats != "m":
        return _Order(shard, plan.json_formats == "j")
    if shard.input_file_id is None:
        raise JoinUnavailable(f"shard {shard.number}'s input file is unknown")
    ids: list[str] = []
    wants = bytearray()
    for lines in _lines(files, shard.input_file_id, f"shard {shard.number}'s input file"):
        for raw in lines:
            custom_id = custom_id_of(raw)
            if custom_id is not None:
                ids.append(custom_id)
                wants.append(
                    plan.json_formats == "j" or (plan.json_formats == "m" and b'"response_format"' in raw and asks_json(raw))
                )
    return _InputOrder(shard, ids, wants)


def _lines(files: FilesApi, file_id: str, what: str) -> Iterator[list[bytes]]:
    """The file's lines, without their line ends, a list per chunk downloaded (blank ones are no row's)."""
    with gone_is_unavailable(file_id, what):
        chunks = files.content(file_id)
    with closing(chunks):
        rest = b""
        for chunk in chunks:
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield lines
        if rest:
            yield [rest]
