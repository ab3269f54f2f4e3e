"""A run from ``requests`` as Azure holds it: one input file and one batch per shard (second-release §G).

Nothing about a run lives in memory between hooks. Each hook reads Azure's state: the run's files
by name (``polysync-{first 32 hex of sha256(run_key)}-{shard}.jsonl``, plus markers) and its
batches by metadata (``polysync_run_key`` and ``polysync_shard`` = ``"{i}/{n}"``), and decides
from that what to create next. Two kinds of marker file record what a batch cannot show:

- ``…-{shard}-refused-{k}.jsonl``: Azure refused to create that shard's batch with
  ``token_limit_exceeded`` (regions that "fail fast"); a refusal in validation is the failed
  batch itself. Markers and failed batches together count the refusals and date the last one.
- ``…-cancelled.jsonl``: the run was cancelled. Every create first looks for it, and a create
  that raced with the cancel looks again afterwards and cancels what it made, so once cancel
  has returned no shard of the run is ever created.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Final

import attrs

from ..errors import AzureServiceError
from ..files import FileInfo, FilesApi
from . import run_ids
from .batch_api import RUN_KEY_METADATA, SHARD_METADATA, TOKEN_LIMIT_EXCEEDED, Batch, BatchApi

log = logging.getLogger(__name__)

#: Enqueued-token quota (§G): a refused shard is tried again after this long, or sooner when
#: another shard of the run finishes; this many refusals fail the run.
QUOTA_RETRY_SECONDS: Final = 300.0
MAX_REFUSALS: Final = 5
#: Submit waits this long for Azure to process the input files; then a later poll creates.
PROCESSING_WAIT_SECONDS: Final = 60.0
#: Batches of a run are never older than its first file; Azure's clocks may differ by this much.
CLOCK_MARGIN_SECONDS: Final = 300
SCAN_LIMIT: Final = 20_000
QUOTA_ADVICE: Final = (
    "Raise the deployment's enqueued-token quota (Azure portal, Quotas), or lower 'OpenAI Max Requests "
    "Per Batch' so that each shard enqueues fewer tokens."
)


def name_prefix(run_key: str) -> str:
    return f"polysync-{hashlib.sha256(run_key.encode('utf-8')).hexdigest()[:32]}-"


def input_name(run_key: str, shard: int) -> str:
    return f"{name_prefix(run_key)}{shard}.jsonl"


def refused_name(run_key: str, shard: int, number: int) -> str:
    return f"{name_prefix(run_key)}{shard}-refused-{number}.jsonl"


def cancelled_name(run_key: str) -> str:
    return f"{name_prefix(run_key)}cancelled.jsonl"


def marker_line(run: run_ids.RowsRunId, text: str) -> bytes:
    """A marker's content: one well-formed batch line that no batch ever runs."""
    body: dict[str, object] = {"model": run.deployment}
    if run.url.endswith("/embeddings"):
        body["input"] = text
    else:
        body["messages"] = [{"role": "user", "content": text}]
    line = {"custom_id": "polysync-marker", "method": "POST", "url": run.url, "body": body}
    return json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n"


@attrs.frozen
class ShardState:
    """What Azure holds of one shard: its input file, its batches (newest first), its refusal markers."""

    number: int
    input_file: FileInfo | None
    batches: tuple[Batch, ...]
    markers: tuple[FileInfo, ...] = ()

    @property
    def current(self) -> Batch | None:
        """The shard's batch, unless its newest attempt was refused for quota."""
        if self.batches and not self.batches[0].quota_refused:
            return self.batches[0]
        return None

    @property
    def in_flight(self) -> bool:
        return self.current is not None and not self.current.terminal

    @property
    def finished_at(self) -> float | None:
        current = self.current
        if current is None or not current.terminal or current.ended_at is None:
            return None
        return current.ended_at.timestamp()

    @property
    def refusals(self) -> tuple[float, ...]:
        """When Azure refused this shard for quota, in batches that failed and in markers."""
        times = [b.ended_at.timestamp() for b in self.batches if b.quota_refused and b.ended_at is not None]
        times += [m.created_at.timestamp() for m in self.markers if m.created_at is not None]
        return tuple(sorted(times))

    @property
    def waiting_for_quota(self) -> bool:
        return self.current is None and bool(self.refusals)

    def refusal_text(self, *, whole: bool = True) -> str:
        """Azure's words on the last refusal in validation (its first sentence unless ``whole``)."""
        for batch in self.batches:
            if batch.quota_refused:
                error = next(e for e in batch.errors if e.get("code") == TOKEN_LIMIT_EXCEEDED)
                text = str(error.get("message") or "no message")
                if not whole:
                    text = text.split(". ", 1)[0].rstrip(".") + "."
                return f"{TOKEN_LIMIT_EXCEEDED}: {text} (batch {batch.id})"
        return f"{TOKEN_LIMIT_EXCEEDED}: Azure refused to create the batch (enqueued-token quota)"


RETRY: Final = "retry"
WAIT: Final = "wait"
GIVE_UP: Final = "give up"


def quota_decision(shard: ShardState, others: Sequence[ShardState], now: float) -> str:
    """Whether a shard refused for quota is created again now, waits, or fails the run (§G).

    Its last refusal stands until another shard of the run finishes after it or five minutes
    pass; a fifth refusal, or a refusal while nothing else of the run is in flight (nothing will
    free quota), ends the wait.
    """
    refusals = shard.refusals
    if len(refusals) >= MAX_REFUSALS:
        return GIVE_UP
    last = refusals[-1]
    if any((other.finished_at or 0) > last for other in others):
        return RETRY
    if not any(other.in_flight for other in others):
        return GIVE_UP
    return RETRY if now - last >= QUOTA_RETRY_SECONDS else WAIT


@attrs.frozen
class RunView:
    """One reading of a run in Azure."""

    run: run_ids.RowsRunId
    shards: tuple[ShardState, ...]
    cancelled: bool
    #: Azure's clock at the reading (its Date header), Unix seconds.
    now: float
    #: Files of the run by name; None when this reading did not list them.
    files: dict[str, list[FileInfo]] | None

    def others(self, shard: ShardState) -> list[ShardState]:
        return [other for other in self.shards if other.number != shard.number]


@attrs.frozen
class Advanced:
    """A reading after ``advance``: the run, notes on what Azure said, shards whose create it refused."""

    view: RunView
    notes: list[str]
    refused: dict[int, str]


class ShardedRun:
    """Reads and moves one run from ``requests``; every decision comes from a fresh reading of Azure."""

    def __init__(self, run: run_ids.RowsRunId, api: BatchApi, files: FilesApi) -> None:
        self.run = run
        self.api = api
        self.files = files

    # -- reading Azure -----------------------------------------------------------------------------

    def list_files(self) -> dict[str, list[FileInfo]]:
        prefix = name_prefix(self.run.run_key)
        named: dict[str, list[FileInfo]] = {}
        for info in self.files.listing("batch"):
            if info.filename and info.filename.startswith(prefix) and info.status not in ("deleted", "deleting"):
                named.setdefault(info.filename, []).append(info)
        return named

    def observe(self, *, with_files: bool | None = None) -> RunView:
        """The run's batches, and its files when asked (None: when a shard has no batch to show)."""
        run = self.run
        by_shard: dict[int, list[Batch]] = {number: [] for number in range(1, run.shards + 1)}
        wanted = {f"{number}/{run.shards}": number for number in by_shard}
        metadata = {RUN_KEY_METADATA: run.run_key}
        for batch in self.api.scan(metadata, run.created - CLOCK_MARGIN_SECONDS, SCAN_LIMIT):
            number = wanted.get(batch.shard or "")
            if number is not None:
                by_shard[number].append(batch)
        if with_files is None:
            with_files = any(not batches or batches[0].quota_refused for batches in by_shard.values())
        files = self.list_files() if with_files else None
        shards = []
        for number, batches in by_shard.items():
            input_file = None
            markers: tuple[FileInfo, ...] = ()
            if files is not None:
                candidates = files.get(input_name(run.run_key, number), [])
                input_file = candidates[0] if candidates else None
                refused_prefix = f"{name_prefix(run.run_key)}{number}-refused-"
                markers = tuple(f for name, found in files.items() if name.startswith(refused_prefix) for f in found)
            shards.append(ShardState(number, input_file, tuple(batches), markers))
        cancelled = files is not None and cancelled_name(run.run_key) in files
        return RunView(run, tuple(shards), cancelled, self.api.now(), files)

    def input_file_id(self, view: RunView, shard: ShardState) -> str | None:
        """The shard's input file: the one its batch names, else the one found by name."""
        for batch in shard.batches:
            if batch.input_file_id:
                return batch.input_file_id
        if shard.input_file is not None:
            return shard.input_file.id
        found = self.list_files().get(input_name(self.run.run_key, shard.number)) if view.files is None else None
        return found[0].id if found else None

    # -- moving it on --------------------------------------------------------------------------------

    def advance(self, view: RunView) -> Advanced:
        """Create every shard whose turn it is; return the new reading and what Azure said.

        Shards are created in order; one waiting for quota holds back the ones after it, which
        would only be refused too. Of the shards refused for quota, one at a time is tried
        again, and only while no shard of the run is validating: the quota that attempt finds
        decides for the others, so waiting shards do not spend their refusals on one freed slot.
        A shard whose input file Azure is still processing waits for a later poll. A create
        Azure refuses for another reason ends that shard's hopes for this reading (the next
        reading tries again: nothing in Azure records such a refusal).
        """
        notes: list[str] = []
        refused: dict[int, str] = {}
        if view.cancelled:
            return Advanced(view, notes, refused)
        created: list[Batch] = []
        validating = any(s.current is not None and s.current.status == "validating" for s in view.shards)
        for shard in view.shards:
            if shard.current is not None:
                continue
            retry = bool(shard.refusals)
            if retry and (validating or quota_decision(shard, view.others(shard), view.now) != RETRY):
                break
            if view.files is None:
                return self.advance(self.observe(with_files=True))
            file = shard.input_file
            if file is None or file.processing or file.status == "error":
                continue  # reported by the status summary
            try:
                batch = self.api.create(
                    file.id,
                    self.run.url,
                    self.run.window,
                    {RUN_KEY_METADATA: self.run.run_key, SHARD_METADATA: f"{shard.number}/{self.run.shards}"},
                )
            except AzureServiceError as exc:
                if exc.transient:
                    raise
                if exc.detail.code != TOKEN_LIMIT_EXCEEDED:
                    refused[shard.number] = exc.detail.describe()
                    continue
                notes.append(f"shard {shard.number}: {exc.detail.describe()}")
                self._record_refusal(view, shard, exc)
                break
            log.info("Created batch %s for shard %d/%d", batch.id, shard.number, self.run.shards)
            created.append(batch)
            if retry:
                break
        if not created and not notes:
            return Advanced(view, notes, refused)
        after = self.observe(with_files=True)
        if created and after.cancelled:
            # The cancel marker appeared while these were being created: undo them.
            for batch in created:
                log.warning("The run was cancelled while batch %s was being created; cancelling it", batch.id)
                self._cancel_batch(batch)
            after = self.observe(with_files=True)
        return Advanced(after, notes, refused)

    def _record_refusal(self, view: RunView, shard: ShardState, exc: AzureServiceError) -> None:
        """A refusal at create leaves nothing in Azure: a marker file records it (and Azure's words)."""
        name = refused_name(self.run.run_key, shard.number, len(shard.markers) + 1)
        self._upload_marker(name, f"{exc.detail.code}: {exc.detail.message}")

    def _upload_marker(self, name: str, text: str) -> FileInfo:
        import io

        return self.files.upload_as(io.BytesIO(marker_line(self.run, text)), name, "batch")

    def _cancel_batch(self, batch: Batch) -> None:
        try:
            self.api.cancel(batch.id)
        except AzureServiceError as exc:
            if exc.detail.status != 409:  # it ended meanwhile: nothing to stop
                raise

    def cancel(self, view: RunView) -> RunView:
        """Mark the run cancelled in Azure, then cancel every shard in flight."""
        if not view.cancelled:
            self._upload_marker(cancelled_name(self.run.run_key), "cancelled")
        for shard in view.shards:
            current = shard.current
            if current is not None and not current.terminal and current.status != "cancelling":
                self._cancel_batch(current)
        return self.observe(with_files=True)

    def wait_for_files(self, view: RunView, deadline_seconds: float = PROCESSING_WAIT_SECONDS) -> RunView:
        """Wait until Azure has processed every input file, or about a minute has passed.

        The minute is measured on this machine's clock and on Azure's (its Date header against the
        files' creation time), whichever passes first.
        """
        started = time.monotonic()
        delay = 0.5
        while True:
            pending = [s.input_file for s in view.shards if s.current is None and s.input_file and s.input_file.processing]
            if not pending:
                return view
            oldest = min((f.created_at.timestamp() for f in pending if f.created_at), default=view.now)
            if time.monotonic() - started >= deadline_seconds or self.api.now() - oldest >= deadline_seconds:
                return view
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
            refreshed = {f.id: self.api.get_file(f.id) for f in pending}
            view = attrs.evolve(
                view,
                shards=tuple(
                    attrs.evolve(s, input_file=refreshed.get(s.input_file.id, s.input_file)) if s.input_file else s
                    for s in view.shards
                ),
            )


def describe_refusal_failure(shard: ShardState, run: run_ids.RowsRunId) -> str:
    count = len(shard.refusals)
    why = f"was refused {count} times" if count >= MAX_REFUSALS else "was refused while nothing else of the run was in flight"
    return (
        f"Shard {shard.number} of {run.shards} {why} for the deployment's enqueued-token quota "
        f"({shard.refusal_text()}). {QUOTA_ADVICE}"
    )
