"""The ``requests`` parameter (second-release §G): its items checked, then written as batch JSONL shards.

Every item is checked before any call, and each error names the item's index. The JSONL is
written while the items are checked, one line at a time, into one temporary file per shard: the
lines are serialised once and never held in memory together, and each shard file is then
uploaded as it is (streamed from disk, rewindable for a retry).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Final

import attrs

from ..ids import json_type
from . import chat_options, run_ids
from .base import JobInput
from .batch_items import PARAMETER, LineBuilder, default_custom_id, encode

MAX_ITEMS: Final = 2_000_000
#: Azure's limits per batch input file (wire-samples §7); "200 MB" read as MiB, the smaller reading.
MAX_SHARD_REQUESTS: Final = run_ids.MAX_SHARD_REQUESTS
MAX_SHARD_BYTES: Final = 200 * 1024 * 1024
MAX_SHARDS: Final = run_ids.MAX_SHARDS
WRITE_BUFFER_BYTES: Final = 1024 * 1024
_DEFAULT_ID: Final = re.compile(r"row-(0|[1-9][0-9]{0,6})", re.ASCII)


@attrs.frozen
class Shard:
    """One shard's JSONL file on disk; ``number`` counts from 1."""

    number: int
    path: Path
    count: int
    size: int


@attrs.frozen
class RequestsPlan:
    """The shards written for a run, and what the results join needs to know of the items."""

    shards: tuple[Shard, ...]
    #: Every item's custom_id is its default, ``row-{index}``.
    default_ids: bool
    #: "n": no item asks for JSON, "j": every item does, "m": some do.
    json_formats: str

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(shard.count for shard in self.shards)

    @property
    def plan(self) -> str:
        return ("d" if self.default_ids else "c") + self.json_formats


@contextmanager
def spooled_shards(job_input: JobInput, value: Any, builder: LineBuilder, *, max_requests: int) -> Iterator[RequestsPlan]:
    """``write_shards`` into a temporary directory that lasts as long as the block.

    A worker's disk that cannot take the JSONL (full, or over a file size limit) is a clear error
    naming the directory, raised before any call, not a bare ``OSError`` the host shows alone.
    """
    try:
        scratch = tempfile.TemporaryDirectory(prefix="polysync-requests-")
    except OSError as exc:
        raise _no_room(job_input, None, exc) from exc
    with scratch as directory:
        try:
            plan = write_shards(job_input, value, builder, Path(directory), max_requests=max_requests)
        except OSError as exc:
            raise _no_room(job_input, Path(directory), exc) from exc
        yield plan


def _no_room(job_input: JobInput, directory: Path | None, exc: OSError) -> Exception:
    reason = exc.strerror or str(exc)
    if directory is None:
        where = f"no temporary directory could be made ({reason})"
    else:
        written = sum(path.stat().st_size for path in directory.iterdir())
        where = f"writing to the temporary directory {directory} failed ({reason}) after {written / (1024 * 1024):.1f} MB"
    return job_input.fail(
        PARAMETER,
        f"could not be written as batch JSONL: {where}",
        f"Submit writes every shard's JSONL there (up to {MAX_SHARD_BYTES // (1024 * 1024)} MB a shard) before the "
        "first upload: free space there, or set TMPDIR to a disk with room for it.",
    )


def write_shards(
    job_input: JobInput,
    value: Any,
    builder: LineBuilder,
    directory: Path,
    *,
    max_requests: int,
    max_bytes: int = MAX_SHARD_BYTES,
) -> RequestsPlan:
    """Check every item and write the shards' JSONL into ``directory``; a clear error before any call."""
    if not isinstance(value, list):
        raise job_input.fail(
            PARAMETER, f"is {json_type(value)}, not a JSON array", "Pass a JSON array of prompts or request objects."
        )
    if not value:
        raise job_input.fail(PARAMETER, "is an empty array", "Give at least one request, or do not run the job.")
    if len(value) > MAX_ITEMS:
        raise job_input.fail(PARAMETER, f"has {len(value):,} items, more than {MAX_ITEMS:,}", "Split the rows over several runs.")
    writer = _ShardWriter(directory, max_requests, max_bytes, lambda: _too_many(job_input, max_requests))
    own_ids: dict[str, int] = {}
    json_rows = 0
    default_ids = True
    try:
        for index, item in enumerate(value):
            if isinstance(item, str):
                encoded = builder.plain_line(index, item)
                json_rows += builder.plain_wants_json
            else:
                custom_id, line = builder.line(index, item)
                if custom_id is not None:
                    first = own_ids.setdefault(custom_id, index)
                    if first != index:
                        raise builder.fail(
                            index, f"has custom_id {custom_id!r}, as item {first} has", "Make every custom_id unique."
                        )
                    default_ids = default_ids and custom_id == default_custom_id(index)
                if builder.chat and chat_options.wants_json(line["body"]):
                    json_rows += 1
                encoded = encode(builder, index, line)
            if len(encoded) > max_bytes:
                raise builder.fail(
                    index,
                    f"is {len(encoded):,} bytes as a batch line, more than the {max_bytes // (1024 * 1024)} MB of a batch file",
                    "Shorten it.",
                )
            writer.write(encoded)
        _default_id_clashes(builder, value, own_ids)
    finally:
        writer.close()
    formats = "n" if json_rows == 0 else "j" if json_rows == len(value) else "m"
    return RequestsPlan(shards=tuple(writer.shards), default_ids=default_ids, json_formats=formats)


def _default_id_clashes(builder: LineBuilder, items: Sequence[Any], own_ids: dict[str, int]) -> None:
    """A caller's custom_id such as 'row-7' clashes with item 7's default when item 7 has none."""
    for custom_id, index in own_ids.items():
        match = _DEFAULT_ID.fullmatch(custom_id)
        if match is None:
            continue
        other = int(match[1])
        if other != index and other < len(items):
            item = items[other]
            if not (isinstance(item, dict) and "custom_id" in item):
                raise builder.fail(
                    index,
                    f"has custom_id {custom_id!r}, the default of item {other}, which sets none",
                    f"Make every custom_id unique: give item {other} its own, or rename this one.",
                )


def _too_many(job_input: JobInput, max_requests: int) -> Exception:
    return job_input.fail(
        PARAMETER,
        f"needs more than {MAX_SHARDS} shards (at most {max_requests:,} request{'' if max_requests == 1 else 's'} and "
        f"{MAX_SHARD_BYTES // (1024 * 1024)} MB per shard)",
        "Split the rows over several runs, or raise 'OpenAI Max Requests Per Batch'.",
    )


class _ShardWriter:
    """Lines into shard files: a new shard when the next line would pass a limit."""

    def __init__(self, directory: Path, max_requests: int, max_bytes: int, too_many: Callable[[], Exception]) -> None:
        self.directory = directory
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.too_many = too_many
        self.shards: list[Shard] = []
        self._handle: IO[bytes] | None = None
        self._path: Path | None = None
        self._count = 0
        self._size = 0

    def write(self, line: bytes) -> None:
        if self._handle is None or self._count == self.max_requests or self._size + len(line) > self.max_bytes:
            self._finish()
            if len(self.shards) == MAX_SHARDS:
                raise self.too_many()
            self._path = self.directory / f"shard-{len(self.shards) + 1}.jsonl"
            # Lines are about 2 KB: a buffer of 1 MiB makes one system call of 500 of them.
            self._handle = self._path.open("wb", buffering=WRITE_BUFFER_BYTES)
        self._handle.write(line)
        self._count += 1
        self._size += len(line)

    def _finish(self) -> None:
        if self._handle is None or self._path is None:
            return
        self._handle.close()
        self.shards.append(Shard(len(self.shards) + 1, self._path, self._count, self._size))
        self._handle, self._path, self._count, self._size = None, None, 0, 0

    def close(self) -> None:
        self._finish()
