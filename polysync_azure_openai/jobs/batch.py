"""Azure OpenAI Batch Job (spec §4): submit, poll, cancel, duplicate-safe per run_key."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import attrs

from ..errors import AzureServiceError, ErrorDetail, RemoteError, TransportError
from ..ids import BATCH_ID, COMPLETION_WINDOW, FILE_ID, json_type
from ..platform import PlatformConfig
from ..results import CANCELLED, FAILED, RUNNING, SUCCESS, UNKNOWN, RunResult
from ..troubleshooting import batch_failure_fix, failure_message
from . import BATCH, BATCH_ENDPOINTS, run_ids
from .base import JobInput, JobService, int_or_none, json_object, utcnow

log = logging.getLogger(__name__)

RUN_KEY_METADATA: Final = "polysync_run_key"
MAX_RUN_KEY: Final = 512
#: The run_key scan looks this far back, at most this many batches (spec §4).
LOOKUP_WINDOW_SECONDS: Final = 48 * 3600
LOOKUP_MAX_BATCHES: Final = 1000
LOOKUP_PAGE: Final = 100
#: After a lost create response, how long to keep looking before creating again.
REATTACH_SECONDS: Final = 30.0
#: How long submit waits for an uploaded input file to finish processing.
FILE_READY_SECONDS: Final = 20.0

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


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


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
    endpoint: str | None = None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Batch:
        counts = json_object(payload, "request_counts")
        status = str(payload.get("status") or "")
        ended = None
        for field in ("completed_at", "failed_at", "expired_at", "cancelled_at"):
            ended = ended or _timestamp(payload.get(field))
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
            created_at=_timestamp(payload.get("created_at")),
            ended_at=ended if status in TERMINAL_AZURE else None,
            completion_window=_str_or_none(payload.get("completion_window")),
            errors=errors,
            errors_raw=raw_errors,
            run_key=_str_or_none(metadata.get(RUN_KEY_METADATA)),
            endpoint=_str_or_none(payload.get("endpoint")),
        )

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

    def to_result(self) -> RunResult:
        status = STATUS_MAP.get(self.status, UNKNOWN)
        files = ", ".join(
            f"{label} file {value}" for label, value in (("output", self.output_file_id), ("error", self.error_file_id)) if value
        )
        files_note = f" ({files})" if files else ""
        if self.status == "completed":
            message = f"Batch {self.id} completed: {self.progress()}{files_note}."
        elif self.status == "failed":
            message = f"Batch {self.id} failed: {self.error_summary() or 'Azure gave no error detail'}."
            codes = frozenset(str(error.get("code")) for error in self.errors)
            message += f" Fix: {batch_failure_fix(codes, self.endpoint)}"
        elif self.status == "expired":
            raw = json.dumps(self.errors_raw, ensure_ascii=False)[:1000]
            message = (
                f"Batch {self.id} expired before it finished (completion window "
                f"{self.completion_window or 'unknown'}): {self.progress()}{files_note}. Azure's errors: {raw}"
            )
        elif self.status == "cancelled":
            message = f"Batch {self.id} was cancelled: {self.progress()}{files_note}."
        elif status == RUNNING:
            message = f"Batch {self.id} is {self.status}: {self.progress()}."
        else:
            message = f"Batch {self.id} has a status this plugin does not know: {self.status!r}; polling continues."
        return RunResult(
            run_id=self.id,
            status=status,
            outputs=self.outputs,
            message=message,
            started_at=self.created_at,
            ended_at=self.ended_at,
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class BatchService(JobService):
    name: ClassVar[str] = BATCH
    operation: ClassVar[str] = "batch"
    external_id_suffix: ClassVar[str] = "::batch"

    # -- input -------------------------------------------------------------------------------------

    def _settings(self, job_input: JobInput) -> tuple[str, str, str]:
        """(input file id, endpoint, completion window), validated before any request."""
        file_id = job_input.text("input_file_id")
        source = "parameter 'input_file_id'"
        if file_id is None:
            file_id = job_input.attribute("OpenAI Input File ID")
            source = "attribute 'OpenAI Input File ID'"
        if file_id is None:
            raise job_input.fail(
                "attribute 'OpenAI Input File ID'",
                "is not set and the run supplies no 'input_file_id' parameter",
                "Upload the JSONL input (polysync-azure-openai batch upload FILE.jsonl) and set the "
                "file-... id it prints, or map 'input_file_id' from an upstream task.",
            )
        file_id = file_id.strip()
        if not FILE_ID.fullmatch(file_id):
            raise job_input.fail(
                source,
                f"is {file_id[:80]!r}: an input file id is 'file-' followed by 1-128 letters, digits, '-' or '_'",
                "Use the id Azure returned when the file was uploaded.",
            )
        endpoint = job_input.attribute("OpenAI Batch Endpoint") or BATCH_ENDPOINTS[0]
        # Either form names the same endpoint; the create sends the platform's surface's form.
        if endpoint.removeprefix("/v1") not in BATCH_ENDPOINTS:
            raise job_input.fail(
                "attribute 'OpenAI Batch Endpoint'",
                f"is {endpoint[:80]!r}",
                f"Use one of {', '.join(BATCH_ENDPOINTS)} (the url of every input line, with /v1 in front on the v1 API).",
            )
        window = job_input.attribute("OpenAI Completion Window") or "24h"
        if not COMPLETION_WINDOW.fullmatch(window):
            raise job_input.fail(
                "attribute 'OpenAI Completion Window'",
                f"is {window[:80]!r}: it must be hours followed by 'h'",
                "Use 24h (the window Azure accepts today), or leave it blank.",
            )
        return file_id, endpoint, window

    @staticmethod
    def _run_key(job_input: JobInput, run_key: Any) -> str:
        if not isinstance(run_key, str):
            raise job_input.fail(
                "run_key",
                f"is {json_type(run_key)}, not a string",
                "This is a host error: the host must pass each TaskRun's key.",
            )
        if not run_key:
            raise job_input.fail("run_key", "is empty", "This is a host error: the host must pass each TaskRun's key.")
        job_input.check_encodable("run_key", run_key)
        if len(run_key) > MAX_RUN_KEY:
            raise job_input.fail(
                "run_key",
                f"has {len(run_key)} characters, more than Azure's metadata limit of {MAX_RUN_KEY}",
                "This is a host error: the host's run keys must be shorter.",
            )
        return run_key

    def _batch_id(self, run_id: Any) -> str | None:
        """The batch id of a RunId, or None for a submit that failed before any batch existed."""
        decoded = run_ids.decode_batch(run_id, self.name)
        return decoded if isinstance(decoded, str) else None

    def check_run_id(self, run_id: str) -> None:
        self._batch_id(run_id)

    # -- hooks -----------------------------------------------------------------------------------

    def submit(self, platform: Any, job: Any, parameters: Mapping[str, Any], run_key: str) -> RunResult:
        from ..http import data_plane

        config = PlatformConfig.from_host(platform)
        job_input = JobInput(job, parameters)
        deployment = self.deployment(job, job_input)
        file_id, endpoint, window = self._settings(job_input)
        key = self._run_key(job_input, run_key)
        api = BatchApi(data_plane(config), config)
        started = utcnow()
        what = f"Submitting the batch for deployment '{deployment}' with input file {file_id}"
        try:
            existing = api.find_by_run_key(key)
            if existing is not None:
                log.info("Re-attached to batch %s for run_key already submitted", existing.id)
                return existing.to_result()
            problem = api.check_input_file(file_id)
            if problem is not None:
                return self._failed_submit(deployment, f"{what} failed: {problem}", started)
            return api.create(file_id, endpoint, window, key).to_result()
        except RemoteError as exc:
            return self.failed(
                run_ids.local(deployment, run_ids.LOCAL_BATCH, FAILED),
                exc.detail,
                what=what,
                config=config,
                deployment=deployment,
                started=started,
            )

    def _failed_submit(self, deployment: str, message: str, started: datetime) -> RunResult:
        return RunResult(
            run_id=run_ids.local(deployment, run_ids.LOCAL_BATCH, FAILED),
            status=FAILED,
            outputs={},
            message=message,
            started_at=started,
            ended_at=utcnow(),
        )

    def get_status(self, platform: Any, job: Any, run_id: str) -> RunResult:
        batch_id = self._batch_id(run_id)
        if batch_id is None:
            return _never_created(run_id, "The batch was never created: submit failed (see the submit's run message).")
        from ..http import data_plane

        config = PlatformConfig.from_host(platform)
        try:
            return BatchApi(data_plane(config), config).get(batch_id).to_result()
        except RemoteError as exc:
            return self._in_flight_failure(run_id, exc, config, f"Reading the status of batch {batch_id}")

    def cancel(self, platform: Any, job: Any, run_id: str) -> RunResult:
        batch_id = self._batch_id(run_id)
        if batch_id is None:
            return _never_created(run_id, "Nothing to cancel: the batch was never created (submit failed).")
        from ..http import data_plane

        config = PlatformConfig.from_host(platform)
        api = BatchApi(data_plane(config), config)
        try:
            current = api.get(batch_id)
            if current.status in TERMINAL_AZURE:
                result = current.to_result()
                return attrs.evolve(result, message=f"Not cancelled: it had already ended. {result.message}")
            return api.cancel(batch_id).to_result()
        except RemoteError as exc:
            return self._in_flight_failure(run_id, exc, config, f"Cancelling batch {batch_id}")

    def _in_flight_failure(self, run_id: str, exc: RemoteError, config: PlatformConfig, what: str) -> RunResult:
        """While a batch may still be running, only a definite answer may end the run (spec §4)."""
        message = failure_message(
            exc.detail, what=what, operation=self.operation, api_key=config.auth.method == "API Key", v1=config.surface.is_v1
        )
        status = exc.detail.status
        if exc.transient or status in (401, 403) or isinstance(exc, TransportError):
            return RunResult(
                run_id=run_id,
                status=UNKNOWN,
                outputs={},
                message=f"{message} The batch may still be running on Azure; polling continues.",
            )
        return RunResult(run_id=run_id, status=FAILED, outputs={}, message=message, ended_at=utcnow())


class BatchApi:
    """The batches and files calls of the data plane, for one platform."""

    def __init__(self, client: Any, config: PlatformConfig) -> None:
        self.client = client
        self.config = config
        self.surface = config.surface
        self.params = config.surface.params

    def _json(
        self, method: str, path: str, what: str, *, body: Any = None, mode: Any = None, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        from ..http import RetryMode, dumps, read_json

        response = self.client.send(
            method,
            path,
            params={**self.params, **(params or {})},
            body=dumps(body) if body is not None else None,
            mode=mode or RetryMode.READ,
        )
        return read_json(response, what)

    def get(self, batch_id: str) -> Batch:
        return self._batch(self._json("GET", self.surface.path(f"batches/{batch_id}"), f"Reading batch {batch_id}"), batch_id)

    def cancel(self, batch_id: str) -> Batch:
        from ..http import RetryMode

        payload = self._json(
            "POST", self.surface.path(f"batches/{batch_id}/cancel"), f"Cancelling batch {batch_id}", mode=RetryMode.POST
        )
        return self._batch(payload, batch_id)

    def create(self, file_id: str, endpoint: str, window: str, run_key: str) -> Batch:
        """Create the batch; when it may exist without an answer saying so, look for it first (§A).

        Nothing created (not sent, 408, 429): the client has already sent it again, after the
        wait Azure asked for, within ``Max Retries``. Maybe created (the answer lost, a 5xx, a
        2xx whose body is unusable): it is looked up by run_key whatever ``Max Retries`` says,
        and created again only when the look-up is sure it is not there and retries are left.
        """
        from ..http import MayExist, RetryMode, dumps, read_json

        body = {
            "input_file_id": file_id,
            "endpoint": self.surface.batch_endpoint(endpoint),
            "completion_window": window,
            "metadata": {RUN_KEY_METADATA: run_key},
        }
        retries_left = self.config.max_retries
        while True:
            try:
                response = self.client.send(
                    "POST",
                    self.surface.path("batches"),
                    params=self.params,
                    body=dumps(body),
                    mode=RetryMode.ONCE,
                    max_retries=retries_left,
                )
                unknown: RemoteError | None = None
            except MayExist as exc:
                unknown = exc.error
            if unknown is None:
                try:
                    return self._batch(read_json(response, "Creating the batch"), None)
                except RemoteError as exc:
                    unknown = exc  # Azure said 2xx: the batch exists, only its answer is unusable
            log.warning("Creating the batch: %s; looking for it by run_key before creating again", unknown.detail.describe())
            found = self._look_up(run_key, unknown)
            if found is not None:
                return found
            retries_left -= unknown.detail.attempts
            if retries_left < 0:
                raise unknown
            log.warning("No batch carries this run_key; creating it again")

    def _look_up(self, run_key: str, unknown: RemoteError) -> Batch | None:
        """The batch carrying ``run_key``; None when about 30 s of look-ups are sure there is none.

        Azure's list may lag behind a create, hence the retries with backoff. When the last
        look-up itself failed, nobody knows whether the batch exists: raise, saying so.
        """
        deadline = time.monotonic() + REATTACH_SECONDS
        delay = 0.25
        while True:
            failure: RemoteError | None = None
            try:
                found = self.find_by_run_key(run_key)
            except RemoteError as exc:
                log.warning("Looking for the batch by run_key failed: %s", exc.detail.describe())
                found, failure = None, exc
            if found is not None:
                return found
            if time.monotonic() + delay > deadline:
                if failure is None:
                    return None
                message = (
                    f"{unknown.detail.message}; the batch may have been created, and looking for it by its "
                    f"run_key failed too ({failure.detail.describe()}). A re-submit with the same run_key "
                    f"finds it; otherwise look for metadata {RUN_KEY_METADATA}={run_key!r} on the resource"
                )
                raise TransportError(attrs.evolve(unknown.detail, message=message), transient=True)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)

    def find_by_run_key(self, run_key: str) -> Batch | None:
        """Newest first, batches of the last 48 hours, at most 1,000 (spec §4)."""
        oldest = time.time() - LOOKUP_WINDOW_SECONDS
        after: str | None = None
        seen = 0
        while seen < LOOKUP_MAX_BATCHES:
            params = {"limit": str(min(LOOKUP_PAGE, LOOKUP_MAX_BATCHES - seen))}
            if after is not None:
                params["after"] = after
            page = self._json("GET", self.surface.path("batches"), "Listing batches", params=params)
            items = [i for i in page.get("data") or [] if isinstance(i, dict)]
            for item in items:
                seen += 1
                batch = Batch.from_json(item)
                # Age first: a run's own batch older than the window is not re-attached (§4).
                if batch.created_at is not None and batch.created_at.timestamp() < oldest:
                    return None
                if batch.run_key == run_key and BATCH_ID.fullmatch(batch.id):
                    return batch
            last = page.get("last_id") or (items[-1].get("id") if items else None)
            if not page.get("has_more") or not items or not isinstance(last, str) or not BATCH_ID.fullmatch(last):
                return None
            after = last
        return None

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


def _never_created(run_id: str, message: str) -> RunResult:
    """A ``{deployment}#batch#Failed`` RunId: decoded locally, like the synchronous ones."""
    return RunResult(run_id=run_id, status=FAILED, outputs={}, message=message)
