"""The Batch API: create, read, list and cancel batches whose life runs on the emulator's clock.

No thread drives a batch. Whenever one is read, it is brought up to the clock's current time:
validation runs once its `validating` phase is over, lines due by now (at
``BatchTiming.requests_per_second``) go through the data plane's real chat or embeddings code and
are appended to output and error files on disk, then come `finalizing` and `completed`. Work done
is never redone, so reading a batch often costs nothing and a test sees exact partial progress.

The batch's own lock serialises this work; the store's lock only guards the table of batches.
"""

from __future__ import annotations

import array
import copy
import json
import math
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from .batch_quota import TOKEN_LIMIT_EXCEEDED, QuotaTable, limit_message, line_tokens
from .clock import MICROSECONDS, BatchTiming, Clock, to_microseconds, to_unix_seconds
from .dataplane import Answer, DataPlaneService, is_v1
from .files import FileStore, files_error
from .server import Exchange, Request, Response, Route, json_response, route
from .state import EmulatorState

# wire-samples §7: the endpoints a batch may target and the operation each runs. Dated
# api-versions take them without `/v1`; the v1 API takes them with it (second-release §B).
DATED_ENDPOINTS = {"/chat/completions": "chatCompletion", "/embeddings": "embeddings"}
V1_ENDPOINTS = {"/v1/chat/completions": "chatCompletion", "/v1/embeddings": "embeddings"}
ENDPOINT_OPERATIONS = {**DATED_ENDPOINTS, **V1_ENDPOINTS}
COMPLETION_WINDOWS = {"24h": 24 * 3600}
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_TASKS = 100_000
# A file with thousands of bad lines reports the first few, as Azure does; enough to fix them.
MAX_REPORTED_ERRORS = 10
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
OUTPUT_PURPOSE = "batch_output"
_UTF8_BOM = b"\xef\xbb\xbf"
_NEVER_RUN = {
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
    "cancelled": ("batch_cancelled", "This request was not executed because the batch was cancelled."),
}


def _problem(code: str, message: str, line: int | None = None, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def _lines_due(elapsed_us: int, rate: float) -> int:
    """Lines a phase of `elapsed_us` covers at `rate` per second; exact for whole rates."""
    if elapsed_us <= 0:
        return 0
    if float(rate).is_integer():
        return elapsed_us * int(rate) // MICROSECONDS
    return math.floor(elapsed_us * rate / MICROSECONDS)


def _time_for(lines: int, rate: float) -> int:
    """Microseconds needed for `lines` lines at `rate` per second (the inverse of :func:`_lines_due`)."""
    if float(rate).is_integer():
        return -(-lines * MICROSECONDS // int(rate))
    return math.ceil(lines * MICROSECONDS / rate)


@attrs.define(eq=False)
class Batch:
    """One batch, as the store keeps it: wire fields, timestamps in microseconds, progress on disk."""

    id: str
    sequence: int
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    created_us: int
    expires_us: int
    directory: Path = attrs.field(repr=False)
    status: str = "validating"
    in_progress_us: int | None = None
    finalizing_us: int | None = None
    completed_us: int | None = None
    failed_us: int | None = None
    expired_us: int | None = None
    cancelling_us: int | None = None
    cancelled_us: int | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: dict[str, Any] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    # After validation: where each request line starts in the input, and how many have run.
    offsets: array.array[int] | None = attrs.field(default=None, repr=False)
    done: int = 0
    # Progress counts from the anchor at the anchor's rate; a new rate re-anchors.
    anchor_us: int = 0
    anchor_done: int = 0
    anchor_rate: float = 0.0
    # The enqueued-token quota: the deployment the lines name, their prompt tokens, and since
    # when they count against the deployment's quota (None: not accepted yet).
    deployment: str | None = None
    tokens: int = 0
    enqueued_us: int | None = None
    lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def enqueued_at(self, at: int) -> bool:
        """Whether its tokens count against its deployment's quota at clock time `at`."""
        if self.enqueued_us is None or self.enqueued_us > at:
            return False
        left = [t for t in (self.finalizing_us, self.cancelling_us, self.expired_us, self.failed_us) if t is not None]
        return not left or min(left) > at

    @property
    def input_path(self) -> Path:
        return self.directory / "input.jsonl"

    @property
    def output_path(self) -> Path:
        return self.directory / "output.jsonl"

    @property
    def error_path(self) -> Path:
        return self.directory / "errors.jsonl"

    def to_json(self) -> dict[str, Any]:
        def seconds(microseconds: int | None) -> int | None:
            return None if microseconds is None else to_unix_seconds(microseconds)

        # A batch that failed validation ran nothing: Azure reports null counts (docs sample).
        failed_validation = self.status == "failed"
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": copy.deepcopy(self.errors),
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": seconds(self.created_us),
            "in_progress_at": seconds(self.in_progress_us),
            "expires_at": seconds(self.expires_us),
            "finalizing_at": seconds(self.finalizing_us),
            "completed_at": seconds(self.completed_us),
            "failed_at": seconds(self.failed_us),
            "expired_at": seconds(self.expired_us),
            "cancelling_at": seconds(self.cancelling_us),
            "cancelled_at": seconds(self.cancelled_us),
            "request_counts": {
                "total": self.total,
                "completed": None if failed_validation else self.completed,
                "failed": None if failed_validation else self.failed,
            },
            "metadata": None if self.metadata is None else dict(self.metadata),
        }


class BatchStore:
    """Thread-safe table of batches and the lazy, incremental engine that runs them."""

    def __init__(
        self,
        clock: Clock,
        timing: BatchTiming,
        files: FileStore,
        dataplane: DataPlaneService,
        state: EmulatorState,
        quotas: QuotaTable | None = None,
    ) -> None:
        self.quotas = quotas or QuotaTable()
        self._clock = clock
        self._timing = timing
        self._files = files
        self._dataplane = dataplane
        self._state = state
        self._lock = threading.Lock()
        self._batches: dict[str, Batch] = {}
        self._sequence = 0

    def close(self) -> None:
        """Forget every batch (their directories go with the file store's)."""
        with self._lock:
            self._batches.clear()

    def create(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: dict[str, str] | None,
        created_us: int | None = None,
        accepted: tuple[str, int] | None = None,
    ) -> Batch | None:
        """A new batch in `validating` with its own link to the input; None if the file is gone.

        `accepted` (deployment, tokens): the quota took its tokens at create (a fail-fast region).
        """
        batch_id = f"batch_{uuid.uuid4()}"
        directory = self._files.directory / batch_id
        directory.mkdir()
        if not self._files.link(input_file_id, directory / "input.jsonl"):
            directory.rmdir()
            return None
        created = self._clock.now_us() if created_us is None else created_us
        with self._lock:
            self._sequence += 1
            batch = Batch(
                id=batch_id,
                sequence=self._sequence,
                input_file_id=input_file_id,
                endpoint=endpoint,
                completion_window=completion_window,
                metadata=metadata,
                created_us=created,
                expires_us=created + to_microseconds(COMPLETION_WINDOWS[completion_window]),
                directory=directory,
            )
            if accepted is not None:
                batch.deployment, batch.tokens = accepted
                batch.enqueued_us = created
            self._batches[batch_id] = batch
        return batch

    def create_newer(self, original: Batch, count: int) -> None:
        """`count` batches like `original`, each a second newer, whose metadata names other runs."""
        for number in range(1, count + 1):
            source = original.metadata or {"run_key": "run"}
            metadata = {key: f"{value}-other-{number}"[-MAX_METADATA_VALUE:] for key, value in source.items()}
            self.create(
                input_file_id=original.input_file_id,
                endpoint=original.endpoint,
                completion_window=original.completion_window,
                metadata=metadata,
                created_us=original.created_us + number * MICROSECONDS,
            )

    def get(self, batch_id: str) -> Batch | None:
        with self._lock:
            return self._batches.get(batch_id)

    def clock_now_us(self) -> int:
        return self._clock.now_us()

    def deployment(self, name: str) -> Any:
        return self._state.deployment(name)

    def newest_first(self) -> list[Batch]:
        with self._lock:
            batches = list(self._batches.values())
        return sorted(batches, key=lambda batch: (batch.created_us, batch.sequence), reverse=True)

    def view(self, batch: Batch) -> dict[str, Any]:
        """The batch as the API shows it now."""
        now = self._clock.now_us()
        self.settle(now, before=batch)
        with batch.lock:
            self._advance(batch, now)
            return batch.to_json()

    def settle(self, now: int, before: Batch | None = None) -> None:
        """Bring older batches up to `now`, oldest first, so quota checks see them in creation order.

        Only while a quota is set: otherwise no batch's life depends on another's. Each batch is
        locked on its own, never two at once.
        """
        if not self.quotas.any():
            return
        for other in reversed(self.newest_first()):
            if before is not None and other.sequence >= before.sequence:
                break
            if other.status not in TERMINAL:
                with other.lock:
                    self._advance(other, now)

    def enqueued(self, deployment: str, at: int, exclude: Batch | None = None) -> int:
        """Tokens of `deployment`'s batches that count against its quota at `at`."""
        with self._lock:
            batches = list(self._batches.values())
        return sum(b.tokens for b in batches if b is not exclude and b.deployment == deployment and b.enqueued_at(at))

    def cancel(self, batch: Batch) -> dict[str, Any] | None:
        """The batch in `cancelling` (again, if it already was); None if it has already ended."""
        now = self._clock.now_us()
        self.settle(now, before=batch)
        with batch.lock:
            self._advance(batch, now)
            if batch.status in TERMINAL:
                return None
            if batch.status != "cancelling":
                batch.status = "cancelling"
                batch.cancelling_us = now
            return batch.to_json()

    # The life cycle. Each step happens at the clock time it was due, however late it is computed.
    def _advance(self, batch: Batch, now: int) -> None:
        timing = self._timing
        while True:
            if batch.status == "validating":
                end = batch.created_us + to_microseconds(timing.validating_seconds)
                if batch.expires_us <= min(now, end):
                    self._end(batch, "expired", batch.expires_us)
                elif now >= end:
                    self._validate(batch, end)
                else:
                    return
            elif batch.status == "in_progress":
                deadline = min(now, batch.expires_us)
                self._process(batch, deadline)
                if batch.done == batch.total:
                    finished = batch.anchor_us + _time_for(batch.total - batch.anchor_done, batch.anchor_rate)
                    batch.finalizing_us = min(finished, deadline)
                    batch.status = "finalizing"
                elif now >= batch.expires_us:
                    self._end(batch, "expired", batch.expires_us)
                else:
                    if timing.requests_per_second != batch.anchor_rate:
                        batch.anchor_us, batch.anchor_done = now, batch.done
                        batch.anchor_rate = timing.requests_per_second
                    return
            elif batch.status == "finalizing":
                assert batch.finalizing_us is not None
                end = batch.finalizing_us + to_microseconds(timing.finalizing_seconds)
                if now < end:
                    return
                self._end(batch, "completed", end)
            elif batch.status == "cancelling":
                assert batch.cancelling_us is not None
                end = batch.cancelling_us + to_microseconds(timing.cancelling_seconds)
                if now < end:
                    return
                self._end(batch, "cancelled", end)
            else:
                return

    def _validate(self, batch: Batch, at: int) -> None:
        problems, offsets, count = self._check_lines(batch)
        batch.total = count
        if not problems:
            problems = self._over_quota(batch, at)
        if problems:
            batch.status = "failed"
            batch.failed_us = at
            batch.errors = {"object": "list", "data": problems[:MAX_REPORTED_ERRORS]}
            return
        batch.offsets = offsets
        batch.status = "in_progress"
        batch.in_progress_us = at
        batch.anchor_us, batch.anchor_done, batch.anchor_rate = at, 0, self._timing.requests_per_second
        batch.output_path.touch()
        batch.error_path.touch()

    def _over_quota(self, batch: Batch, at: int) -> list[dict[str, Any]]:
        """Azure's quota check at validation: the problem if this batch's tokens do not fit."""
        quota = self.quotas.get(batch.deployment or "")
        if quota is None or batch.enqueued_us is not None:
            return []
        if self.enqueued(batch.deployment or "", at, exclude=batch) + batch.tokens > quota.tokens:
            deployment = self._state.deployment(batch.deployment or "")
            model = deployment.model_label if deployment is not None else str(batch.deployment)
            return [_problem(TOKEN_LIMIT_EXCEEDED, limit_message(str(batch.deployment), model, quota.tokens))]
        batch.enqueued_us = at
        return []

    def _check_lines(self, batch: Batch) -> tuple[list[dict[str, Any]], array.array[int], int]:
        """Azure's batch validation: problems found (first per line), request line offsets, request count."""
        offsets: array.array[int] = array.array("q")
        with batch.input_path.open("rb") as reader:
            head = reader.read(len(_UTF8_BOM))
            if not head:
                message = "The input file is empty. Please ensure that the batch contains at least one request."
                return [_problem("empty_file", message)], offsets, 0
            if head == _UTF8_BOM:
                message = (
                    "A valid model deployment name couldn't be extracted from the input file. Please ensure "
                    "the file is UTF-8 encoded without a byte order mark (BOM)."
                )
                return [_problem("invalid_request", message, 1)], offsets, 0
            # Counting first is cheap and spares parsing a file that is refused for its size anyway.
            reader.seek(0)
            count = sum(1 for raw in reader if raw.strip())
            if count == 0:
                return [_problem("empty_batch", "The input file contains no requests.")], offsets, 0
            if count > MAX_TASKS:
                message = f"The input file has {count} requests; a batch may have at most {MAX_TASKS:,}."
                return [_problem("too_many_tasks", message)], offsets, count
            problems: list[dict[str, Any]] = []
            enqueued = 0
            seen: set[str] = set()
            first_model: str | None = None
            reader.seek(0)
            position = 0
            for number, raw in enumerate(reader, start=1):
                start, position = position, position + len(raw)
                if not raw.strip():
                    continue
                problem, model, tokens = self._check_line(batch, raw, number, seen, first_model)
                if problem is not None:
                    problems.append(problem)
                    if len(problems) == MAX_REPORTED_ERRORS:
                        break
                    continue
                first_model = first_model or model
                enqueued += tokens
                offsets.append(start)
        if batch.enqueued_us is None:  # a fail-fast region counted them at create
            batch.deployment, batch.tokens = first_model, enqueued
        return problems, offsets, count

    def _check_line(
        self, batch: Batch, raw: bytes, number: int, seen: set[str], first_model: str | None
    ) -> tuple[dict[str, Any] | None, str | None, int]:
        """The line's problem, or its model and the prompt tokens it enqueues."""
        try:
            line = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _problem("invalid_json_line", f"Line {number} is not valid JSON.", number), None, 0
        if not isinstance(line, dict):
            return _problem("invalid_json_line", f"Line {number} is not a JSON object.", number), None, 0
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            return _problem("invalid_request", f"Line {number} has no 'custom_id' string.", number, "custom_id"), None, 0
        if custom_id in seen:
            message = (
                f"The custom_id '{custom_id[:100]}' on line {number} is used by an earlier line; custom_id values must be unique."
            )
            return _problem("duplicate_custom_id", message, number, "custom_id"), None, 0
        seen.add(custom_id)
        if line.get("method") != "POST":
            return _problem("invalid_request", f"Line {number}: 'method' must be 'POST'.", number, "method"), None, 0
        url = line.get("url")
        if url != batch.endpoint:
            message = f"Line {number}: the url '{str(url)[:100]}' does not match the batch endpoint '{batch.endpoint}'."
            return _problem("url_mismatch", message, number, "url"), None, 0
        body = line.get("body")
        if not isinstance(body, dict):
            return _problem("invalid_request", f"Line {number}: 'body' must be a JSON object.", number, "body"), None, 0
        model = body.get("model")
        deployment = self._state.deployment(model) if isinstance(model, str) else None
        if deployment is None or deployment.provisioning_state != "Succeeded":
            message = f"Line {number}: the model '{str(model)[:100]}' is not a deployment of this resource."
            return _problem("model_not_found", message, number, "body.model"), None, 0
        if first_model is not None and model != first_model:
            message = (
                f"Line {number}: the model '{model}' differs from '{first_model}' on the earlier lines; "
                "a batch uses one deployment."
            )
            return _problem("model_mismatch", message, number, "body.model"), None, 0
        return None, model, line_tokens(body)

    def _process(self, batch: Batch, until: int) -> None:
        """Run the lines due by `until` that have not run yet, appending their results to disk."""
        assert batch.offsets is not None
        due = min(batch.total, batch.anchor_done + _lines_due(until - batch.anchor_us, batch.anchor_rate))
        if due <= batch.done:
            return
        with (
            batch.input_path.open("rb") as reader,
            batch.output_path.open("ab") as output,
            batch.error_path.open("ab") as errors,
        ):
            reader.seek(batch.offsets[batch.done])
            for index in range(batch.done, due):
                raw = _next_request_line(reader)
                ran_at = batch.anchor_us + _time_for(index + 1 - batch.anchor_done, batch.anchor_rate)
                custom_id, answer = self._run_line(batch, raw, to_unix_seconds(ran_at))
                result = {
                    "custom_id": custom_id,
                    "response": {"status_code": answer.status, "request_id": str(uuid.uuid4()), "body": answer.payload},
                    "error": None,
                }
                encoded = json.dumps(result, separators=(",", ":")).encode("utf-8") + b"\n"
                if answer.status == 200:
                    output.write(encoded)
                    batch.completed += 1
                else:
                    errors.write(encoded)
                    batch.failed += 1
                batch.done = index + 1

    def _run_line(self, batch: Batch, raw: bytes, created: int) -> tuple[str, Answer]:
        """One line through the same code as a synchronous call, its `model` naming the deployment."""
        line = json.loads(raw)
        body: dict[str, Any] = line["body"]
        operation = ENDPOINT_OPERATIONS[batch.endpoint]
        dataplane = self._dataplane
        deployment = dataplane.callable_deployment(body["model"], operation, in_batch=True)
        if isinstance(deployment, Answer):
            return line["custom_id"], deployment
        if operation == "chatCompletion":
            return line["custom_id"], dataplane.chat(deployment, body, created=created)
        return line["custom_id"], dataplane.embed(deployment, body)

    def _end(self, batch: Batch, status: str, at: int) -> None:
        """Enter a terminal state; a batch that got past validation gets its output and error files."""
        batch.status = status
        setattr(batch, f"{status}_us", at)
        if status == "expired":
            expiry = _problem("batch_expired", "The batch expired before all its requests ran.")
            batch.errors = {"object": "list", "data": [expiry]}
        if batch.offsets is None:
            return
        if status in _NEVER_RUN and batch.done < batch.total:
            code, message = _NEVER_RUN[status]
            with batch.input_path.open("rb") as reader, batch.error_path.open("ab") as errors:
                reader.seek(batch.offsets[batch.done])
                for _ in range(batch.done, batch.total):
                    custom_id = json.loads(_next_request_line(reader))["custom_id"]
                    never_ran = {"custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}
                    errors.write(json.dumps(never_ran, separators=(",", ":")).encode("utf-8") + b"\n")
        batch.offsets = None
        files = self._files
        batch.output_file_id = files.adopt(
            batch.output_path, purpose=OUTPUT_PURPOSE, filename=f"{batch.id}_output.jsonl", created_us=at
        ).id
        batch.error_file_id = files.adopt(
            batch.error_path, purpose=OUTPUT_PURPOSE, filename=f"{batch.id}_error.jsonl", created_us=at
        ).id


def _next_request_line(reader: BinaryIO) -> bytes:
    """The next non-blank line (validation skipped blank lines when it counted requests)."""
    while True:
        raw = reader.readline()
        if raw.strip() or not raw:
            return raw


@attrs.frozen
class LoseBatchCreate:
    """A fault: create the batch for real, add `newer_batches` newer ones, then reset the connection.

    The client sees a reset with no answer byte although its batch exists, and a scan of the
    list by metadata has to page past the newer batches to find it.
    """

    store: BatchStore
    newer_batches: int
    name: str = "lose_batch_create"

    def apply(self, exchange: Exchange) -> None:
        response = exchange.respond()
        if response.status == 200:
            created = self.store.get(json.loads(response.body)["id"])
            if created is not None:
                self.store.create_newer(created, self.newer_batches)
        exchange.reset()


class BatchesService:
    """The `/openai/batches` routes; auth and api-version rules are the data plane's."""

    def __init__(self, store: BatchStore, files: FileStore, authorize: Callable[[Request], Response | None]) -> None:
        self._store = store
        self._files = files
        self._authorize = authorize
        # A fail-fast quota check and the create it allows happen together, one create at a time.
        self._create_lock = threading.Lock()

    def routes(self) -> list[Route]:
        # The dated API's paths and the v1 API's: one store, so a batch is the same on both.
        routes: list[Route] = []
        for base in ("/openai/batches", "/openai/v1/batches"):
            one = base + r"/(?P<batch_id>[^/]+)"
            routes += [
                route("POST", base, "batches.create", self.create),
                route("GET", base, "batches.list", self.list_batches),
                route("GET", one, "batches.get", self.get_batch),
                route("POST", one + r"/cancel", "batches.cancel", self.cancel),
            ]
        return routes

    def create(self, request: Request, match: re.Match[str]) -> Response:
        refused = self._authorize(request)
        if refused is not None:
            return refused
        if request.content_type() != "application/json":
            return files_error(400, "invalidPayload", "The request body must be JSON (Content-Type: application/json).")
        try:
            body = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return files_error(400, "invalidPayload", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return files_error(400, "invalidPayload", "The request body must be a JSON object.")
        problem = _check_create(body, V1_ENDPOINTS if is_v1(request) else DATED_ENDPOINTS)
        if problem is not None:
            return problem
        input_file_id: str = body["input_file_id"]
        input_file = self._files.snapshot(input_file_id)
        if input_file is None:
            return files_error(400, "invalidPayload", f"The input file '{input_file_id}' does not exist.", "input_file_id")
        if input_file["purpose"] != "batch":
            message = f"The input file '{input_file_id}' has purpose '{input_file['purpose']}'; a batch needs purpose 'batch'."
            return files_error(400, "invalidPayload", message, "input_file_id")
        if input_file["status"] == "error":
            message = f"The input file '{input_file_id}' failed processing: {input_file['status_details']}"
            return files_error(400, "fileImportFailed", message, "input_file_id")
        if input_file["status"] != "processed":
            message = f"The input file '{input_file_id}' is '{input_file['status']}'; wait until it is 'processed'."
            return files_error(400, "unexpectedEntityState", message, "input_file_id")
        with self._create_lock:
            accepted = self._fail_fast(input_file_id)
            if isinstance(accepted, Response):
                return accepted
            batch = self._store.create(
                input_file_id=input_file_id,
                endpoint=body["endpoint"],
                completion_window=body["completion_window"],
                metadata=body.get("metadata"),
                accepted=accepted,
            )
        if batch is None:  # deleted between the check and the link
            return files_error(400, "invalidPayload", f"The input file '{input_file_id}' does not exist.", "input_file_id")
        return json_response(200, self._store.view(batch))

    def _fail_fast(self, input_file_id: str) -> tuple[str, int] | Response | None:
        """Where the deployment's quota fails fast: refuse the create over it, else take the tokens."""
        if not self._store.quotas.any():
            return None
        deployment, tokens = self._file_tokens(input_file_id)
        quota = self._store.quotas.get(deployment or "")
        if deployment is None or quota is None or not quota.fail_fast:
            return None
        store = self._store
        now = store.clock_now_us()
        store.settle(now)
        if store.enqueued(deployment, now) + tokens > quota.tokens:
            found = store.deployment(deployment)
            model = found.model_label if found is not None else deployment
            return files_error(400, TOKEN_LIMIT_EXCEEDED, limit_message(deployment, model, quota.tokens))
        return deployment, tokens

    def _file_tokens(self, file_id: str) -> tuple[str | None, int]:
        """The first line's model and every line's prompt tokens, read from the stored file."""
        opened = self._files.open(file_id)
        if opened is None:
            return None, 0
        handle, _ = opened
        model: str | None = None
        tokens = 0
        with handle:
            for raw in handle:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                body = line.get("body") if isinstance(line, dict) else None
                if isinstance(body, dict):
                    model = model or (body.get("model") if isinstance(body.get("model"), str) else None)
                    tokens += line_tokens(body)
        return model, tokens

    def _batch(self, request: Request, match: re.Match[str]) -> Batch | Response:
        """The batch the path names, or the 401/404 answer Azure would give."""
        refused = self._authorize(request)
        if refused is not None:
            return refused
        batch = self._store.get(match["batch_id"])
        return batch if batch is not None else _batch_not_found(match["batch_id"])

    def get_batch(self, request: Request, match: re.Match[str]) -> Response:
        batch = self._batch(request, match)
        if isinstance(batch, Response):
            return batch
        return json_response(200, self._store.view(batch))

    def list_batches(self, request: Request, match: re.Match[str]) -> Response:
        refused = self._authorize(request)
        if refused is not None:
            return refused
        limit_text = request.query.get("limit", str(DEFAULT_LIST_LIMIT))
        if not limit_text.isascii() or not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIST_LIMIT:
            message = f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, not '{limit_text[:20]}'."
            return files_error(400, "invalidPayload", message, "limit")
        limit = int(limit_text)
        batches = self._store.newest_first()
        after = request.query.get("after")
        if after:
            position = next((index for index, batch in enumerate(batches) if batch.id == after), None)
            if position is None:
                return files_error(400, "invalidPayload", f"after names no batch: '{after[:100]}'.", "after")
            batches = batches[position + 1 :]
        page = [self._store.view(batch) for batch in batches[:limit]]
        return json_response(
            200,
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(batches) > limit,
            },
        )

    def cancel(self, request: Request, match: re.Match[str]) -> Response:
        batch = self._batch(request, match)
        if isinstance(batch, Response):
            return batch
        cancelled = self._store.cancel(batch)
        if cancelled is None:
            status = self._store.view(batch)["status"]
            message = f"Batch {batch.id} has already ended (status '{status}'); it cannot be cancelled."
            return files_error(409, "conflict", message)
        return json_response(200, cancelled)


def _batch_not_found(batch_id: str) -> Response:
    return files_error(404, "notFound", f"Batch with id '{batch_id}' not found.")


def _check_create(body: dict[str, Any], endpoints: dict[str, str]) -> Response | None:
    """Azure's checks of a create body that need no lookup; None if it passes.

    `endpoints` are those of the surface the request came on (dated or v1).
    """
    for field in ("input_file_id", "endpoint", "completion_window"):
        value = body.get(field)
        if value is None:
            return files_error(400, "invalidPayload", f"The field '{field}' is required.", field)
        if not isinstance(value, str):
            return files_error(400, "invalidPayload", f"The field '{field}' must be a string.", field)
    if body["endpoint"] not in endpoints:
        message = f"The endpoint '{body['endpoint'][:100]}' is not supported; use one of {', '.join(endpoints)}."
        return files_error(400, "invalidPayload", message, "endpoint")
    if body["completion_window"] not in COMPLETION_WINDOWS:
        message = f"The completion window '{body['completion_window'][:20]}' is not supported; use '24h'."
        return files_error(400, "invalidPayload", message, "completion_window")
    metadata = body.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        return files_error(400, "invalidPayload", "metadata must be an object whose values are strings.", "metadata")
    if len(metadata) > MAX_METADATA_PAIRS:
        message = f"metadata has {len(metadata)} keys; at most {MAX_METADATA_PAIRS} are allowed."
        return files_error(400, "invalidPayload", message, "metadata")
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY:
            message = f"The metadata key '{key[:80]}…' is longer than {MAX_METADATA_KEY} characters."
            return files_error(400, "invalidPayload", message, "metadata")
        if len(value) > MAX_METADATA_VALUE:
            message = f"The metadata value of '{key}' has {len(value)} characters; at most {MAX_METADATA_VALUE} are allowed."
            return files_error(400, "invalidPayload", message, "metadata")
    return None
