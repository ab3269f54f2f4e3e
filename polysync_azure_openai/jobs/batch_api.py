"""The batches calls of the data plane and the batch object they return (spec §4, wire-samples §7)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import attrs

from ..errors import AzureServiceError, ErrorDetail, TransportError
from ..files import FileInfo
from ..ids import BATCH_ID
from ..platform import PlatformConfig
from ..results import CANCELLED, FAILED, RUNNING, SUCCESS, UNKNOWN, RunResult
from ..troubleshooting import batch_failure_fix
from .base import int_or_none, json_object

RUN_KEY_METADATA: Final = "polysync_run_key"
SHARD_METADATA: Final = "polysync_shard"
#: The run_key scan of a file-based run looks this far back, at most this many batches (spec §4).
LOOKUP_WINDOW_SECONDS: Final = 48 * 3600
LOOKUP_MAX_BATCHES: Final = 1000
LOOKUP_PAGE: Final = 100
#: How long submit waits for an input file the caller uploaded to finish processing.
FILE_READY_SECONDS: Final = 20.0
#: Azure's error code for a batch over the deployment's enqueued-token quota (wire-samples §8).
TOKEN_LIMIT_EXCEEDED: Final = "token_limit_exceeded"  # noqa: S105 (an error code)

STATUS_MAP: Final = {
    "validating": RUNNING,
    "in_progress": RUNNING,
    "finalizing": RUNNING,
    "cancelling": RUNNING,
    "completed": SUCCESS,
    "failed": FAILED,
    "expired": FAILED,
    "cancelled": CANCELLED,
}
TERMINAL_AZURE: Final = frozenset({"completed", "failed", "expired", "cancelled"})


def timestamp(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@attrs.frozen
class Batch:
    """The fields of an Azure batch object the plugin uses (wire-samples §7)."""

    id: str
    status: str
    input_file_id: str | None
    output_file_id: str | None
    error_file_id: str | None
    total: int | None
    completed: int | None
    failed: int | None
    created_at: datetime | None
    ended_at: datetime | None
    completion_window: str | None
    errors: list[dict[str, Any]]
    errors_raw: Any
    run_key: str | None
    shard: str | None = None
    endpoint: str | None = None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Batch:
        counts = json_object(payload, "request_counts")
        status = str(payload.get("status") or "")
        ended = None
        for field in ("completed_at", "failed_at", "expired_at", "cancelled_at"):
            ended = ended or timestamp(payload.get(field))
        raw_errors = payload.get("errors")
        data = raw_errors.get("data") if isinstance(raw_errors, dict) else raw_errors
        if isinstance(data, dict):
            data = [data]
        errors = [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
        metadata = json_object(payload, "metadata")
        return cls(
            id=str(payload.get("id") or ""),
            status=status,
            input_file_id=_str_or_none(payload.get("input_file_id")),
            output_file_id=_str_or_none(payload.get("output_file_id")),
            error_file_id=_str_or_none(payload.get("error_file_id")),
            total=int_or_none(counts.get("total")),
            completed=int_or_none(counts.get("completed")),
            failed=int_or_none(counts.get("failed")),
            created_at=timestamp(payload.get("created_at")),
            ended_at=ended if status in TERMINAL_AZURE else None,
            completion_window=_str_or_none(payload.get("completion_window")),
            errors=errors,
            errors_raw=raw_errors,
            run_key=_str_or_none(metadata.get(RUN_KEY_METADATA)),
            shard=_str_or_none(metadata.get(SHARD_METADATA)),
            endpoint=_str_or_none(payload.get("endpoint")),
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_AZURE

    @property
    def quota_refused(self) -> bool:
        """Failed validation for the deployment's enqueued-token quota (§G): worth another try."""
        return self.status == "failed" and any(e.get("code") == TOKEN_LIMIT_EXCEEDED for e in self.errors)

    @property
    def outputs(self) -> dict[str, Any]:
        return {
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "request_counts_total": self.total,
            "request_counts_completed": self.completed,
            "request_counts_failed": self.failed,
        }

    def progress(self) -> str:
        if not self.total:  # Azure reports total 0 until validation has counted the lines
            return "request counts not reported yet"
        done = (self.completed or 0) + (self.failed or 0)
        return f"{done} of {self.total} requests done, {self.failed or 0} failed"

    def error_summary(self) -> str:
        parts = []
        for error in self.errors[:5]:
            line = f" (line {error['line']})" if error.get("line") not in (None, "") else ""
            parts.append(f"{error.get('code') or 'error'}: {error.get('message') or ''}{line}".strip())
        if len(self.errors) > 5:
            parts.append(f"and {len(self.errors) - 5} more")
        return "; ".join(parts)

    def describe(self) -> str:
        """One sentence on where the batch stands, for run messages."""
        files = ", ".join(
            f"{label} file {value}" for label, value in (("output", self.output_file_id), ("error", self.error_file_id)) if value
        )
        files_note = f" ({files})" if files else ""
        if self.status == "completed":
            return f"Batch {self.id} completed: {self.progress()}{files_note}."
        if self.status == "failed":
            codes = frozenset(str(error.get("code")) for error in self.errors)
            return (
                f"Batch {self.id} failed: {self.error_summary() or 'Azure gave no error detail'}. "
                f"Fix: {batch_failure_fix(codes, self.endpoint)}"
            )
        if self.status == "expired":
            raw = json.dumps(self.errors_raw, ensure_ascii=False)[:1000]
            return (
                f"Batch {self.id} expired before it finished (completion window "
                f"{self.completion_window or 'unknown'}): {self.progress()}{files_note}. Azure's errors: {raw}"
            )
        if self.status == "cancelled":
            return f"Batch {self.id} was cancelled: {self.progress()}{files_note}."
        if STATUS_MAP.get(self.status) == RUNNING:
            return f"Batch {self.id} is {self.status}: {self.progress()}."
        return f"Batch {self.id} has a status this plugin does not know: {self.status!r}; polling continues."

    def to_result(self) -> RunResult:
        return RunResult(
            run_id=self.id,
            status=STATUS_MAP.get(self.status, UNKNOWN),
            outputs=self.outputs,
            message=self.describe(),
            started_at=self.created_at,
            ended_at=self.ended_at,
        )


class BatchApi:
    """The batches calls of the data plane, for one platform.

    ``server_now`` is Azure's clock as its last answer's ``Date`` header gave it: waits measured
    against Azure's own timestamps (§G's five minutes) use it rather than this machine's clock.
    """

    def __init__(self, client: Any, config: PlatformConfig) -> None:
        self.client = client
        self.config = config
        self.surface = config.surface
        self.params = config.surface.params
        self.server_now: float | None = None

    def now(self) -> float:
        return self.server_now if self.server_now is not None else time.time()

    def note_date(self, response: Any) -> None:
        date = response.headers.get("Date")
        try:
            parsed = parsedate_to_datetime(date) if date else None
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            self.server_now = parsed.timestamp()

    def _json(
        self, method: str, path: str, what: str, *, mode: Any = None, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        from ..http import RetryMode, read_json

        response = self.client.send(method, path, params={**self.params, **(params or {})}, mode=mode or RetryMode.READ)
        self.note_date(response)
        return read_json(response, what)

    def get(self, batch_id: str) -> Batch:
        return self._batch(self._json("GET", self.surface.path(f"batches/{batch_id}"), f"Reading batch {batch_id}"), batch_id)

    def get_file(self, file_id: str) -> FileInfo:
        return FileInfo.from_json(self._json("GET", self.surface.path(f"files/{file_id}"), f"Reading file {file_id}"))

    def cancel(self, batch_id: str) -> Batch:
        from ..http import RetryMode

        path = self.surface.path(f"batches/{batch_id}/cancel")
        payload = self._json("POST", path, f"Cancelling batch {batch_id}", mode=RetryMode.POST)
        return self._batch(payload, batch_id)

    def create(self, file_id: str, endpoint: str, window: str, metadata: Mapping[str, str]) -> Batch:
        """Create the batch; after an unknown outcome it is looked up by its metadata first (§A).

        ``endpoint`` is sent as given: it must be the ``url`` of the file's lines, in the form of
        the surface they were written for.
        """
        from ..http import RetryMode, create_or_find, dumps, read_json

        body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": window, "metadata": dict(metadata)}

        def send(retries: int) -> Any:
            response = self.client.send(
                "POST",
                self.surface.path("batches"),
                params=self.params,
                body=dumps(body),
                mode=RetryMode.CREATE,
                max_retries=retries,
            )
            self.note_date(response)
            return response

        def read(response: Any) -> Batch:
            return self._batch(read_json(response, "Creating the batch"), None)

        def find() -> Batch | None:
            return next(self.scan(metadata, self.now() - LOOKUP_WINDOW_SECONDS, LOOKUP_MAX_BATCHES), None)

        shown = ", ".join(f"{key}={value!r}" for key, value in metadata.items())
        return create_or_find(
            send,
            read,
            find,
            max_retries=self.config.max_retries,
            what="Creating the batch",
            hint=f"A re-submit with the same run_key finds it; otherwise look for metadata {shown} on the resource.",
        )

    def scan(self, metadata: Mapping[str, str], not_before: float, limit: int) -> Iterator[Batch]:
        """Batches whose metadata holds every pair of ``metadata``, newest first.

        The walk stops at a batch created before ``not_before`` or after ``limit`` batches.
        """
        after: str | None = None
        seen = 0
        while seen < limit:
            params = {"limit": str(min(LOOKUP_PAGE, limit - seen))}
            if after is not None:
                params["after"] = after
            page = self._json("GET", self.surface.path("batches"), "Listing batches", params=params)
            items = [i for i in page.get("data") or [] if isinstance(i, dict)]
            for item in items:
                seen += 1
                labels = json_object(item, "metadata")
                batch = Batch.from_json(item)
                # Age first: a run's own batch older than the window is not re-attached (§4).
                if batch.created_at is not None and batch.created_at.timestamp() < not_before:
                    return
                if all(labels.get(key) == value for key, value in metadata.items()) and BATCH_ID.fullmatch(batch.id):
                    yield batch
            last = page.get("last_id") or (items[-1].get("id") if items else None)
            if not page.get("has_more") or not items or not isinstance(last, str) or not BATCH_ID.fullmatch(last):
                return
            after = last

    def find_by_run_key(self, run_key: str) -> Batch | None:
        """Newest first, batches of the last 48 hours, at most 1,000 (spec §4)."""
        return next(self.scan({RUN_KEY_METADATA: run_key}, time.time() - LOOKUP_WINDOW_SECONDS, LOOKUP_MAX_BATCHES), None)

    def check_input_file(self, file_id: str) -> str | None:
        """None when the file can feed a batch; otherwise what is wrong and what to do."""
        deadline = time.monotonic() + FILE_READY_SECONDS
        delay = 0.5
        while True:
            try:
                info = self._json("GET", self.surface.path(f"files/{file_id}"), f"Reading input file {file_id}")
            except AzureServiceError as exc:
                if exc.detail.status == 404:
                    return (
                        f"input file {file_id} does not exist on resource '{self.config.resource_name}' "
                        f"({exc.detail.describe()}). Upload it to this resource "
                        "(polysync-azure-openai batch upload FILE.jsonl) or correct the file id."
                    )
                raise
            purpose = info.get("purpose")
            status = info.get("status")
            if purpose != "batch":
                return (
                    f"input file {file_id} has purpose {purpose!r}, not 'batch'. Upload the JSONL "
                    "again with purpose 'batch' (polysync-azure-openai batch upload does)."
                )
            if status == "error":
                details = info.get("status_details") or "no detail given"
                return f"input file {file_id} failed Azure's processing: {details}. Fix the JSONL and upload it again."
            if status in ("processed", None):
                return None
            if time.monotonic() + delay > deadline:
                return (
                    f"input file {file_id} is still {status!r} after {FILE_READY_SECONDS:.0f} s. "
                    "Wait until Azure has processed it, then run again."
                )
            time.sleep(delay)
            delay = min(delay * 2, 4.0)

    @staticmethod
    def _batch(payload: Mapping[str, Any], expected_id: str | None) -> Batch:
        batch = Batch.from_json(payload)
        if not BATCH_ID.fullmatch(batch.id) or (expected_id is not None and batch.id != expected_id):
            raise TransportError(
                ErrorDetail(None, "UnexpectedResponse", f"the batch answer carries an unusable id {batch.id[:80]!r}", None)
            )
        return batch
