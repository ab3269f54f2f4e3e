"""Azure OpenAI Batch Job (spec §4, second-release §G): submit, poll, cancel, duplicate-safe per run_key.

A run takes its requests from the ``requests`` parameter (rows in, rows out: ``batch_rows``), else
from an uploaded file (``input_file_id``, else ``OpenAI Input File ID``: one batch, as in 0.1.0).
Either way the read that sees the run ended joins its per-row results into the outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Final

import attrs

from ..errors import RemoteError, TransportError
from ..ids import COMPLETION_WINDOW, FILE_ID, json_type
from ..platform import PlatformConfig
from ..results import FAILED, UNKNOWN, RunResult
from ..troubleshooting import failure_message
from . import BATCH, BATCH_ENDPOINTS, run_ids
from .base import JobInput, JobService, utcnow
from .batch_api import RUN_KEY_METADATA, Batch, BatchApi
from .batch_results import empty_outputs

log = logging.getLogger(__name__)

MAX_RUN_KEY: Final = run_ids.MAX_RUN_KEY
DEFAULT_MAX_RESULTS_MB: Final = 16
MAX_RESULTS_MB: Final = 4096


class BatchService(JobService):
    name: ClassVar[str] = BATCH
    operation: ClassVar[str] = "batch"
    external_id_suffix: ClassVar[str] = "::batch"

    # -- input -------------------------------------------------------------------------------------

    def _input_file(self, job_input: JobInput) -> str:
        """The input file id of a run without ``requests``, validated before any request."""
        file_id = job_input.text("input_file_id")
        source = "parameter 'input_file_id'"
        if file_id is None:
            file_id = job_input.attribute("OpenAI Input File ID")
            source = "attribute 'OpenAI Input File ID'"
        if file_id is None:
            raise job_input.fail(
                "attribute 'OpenAI Input File ID'",
                "is not set and the run supplies neither 'requests' nor 'input_file_id'",
                "Pass the rows as the 'requests' parameter, or upload the JSONL input (polysync-azure-openai "
                "batch upload FILE.jsonl) and set the file-... id it prints, or map 'input_file_id' from an upstream task.",
            )
        file_id = file_id.strip()
        if not FILE_ID.fullmatch(file_id):
            raise job_input.fail(
                source,
                f"is {file_id[:80]!r}: an input file id is 'file-' followed by 1-128 letters, digits, '-' or '_'",
                "Use the id Azure returned when the file was uploaded.",
            )
        return file_id

    @staticmethod
    def _endpoint(job_input: JobInput) -> str:
        """The endpoint in its bare form; either form names it, and what is sent takes the surface's."""
        endpoint = job_input.attribute("OpenAI Batch Endpoint") or BATCH_ENDPOINTS[0]
        bare = endpoint.removeprefix("/v1")
        if bare not in BATCH_ENDPOINTS:
            raise job_input.fail(
                "attribute 'OpenAI Batch Endpoint'",
                f"is {endpoint[:80]!r}",
                f"Use one of {', '.join(BATCH_ENDPOINTS)} (the url of every input line, with /v1 in front on the v1 API).",
            )
        return bare

    @staticmethod
    def _window(job_input: JobInput) -> str:
        window = job_input.attribute("OpenAI Completion Window") or "24h"
        if not COMPLETION_WINDOW.fullmatch(window):
            raise job_input.fail(
                "attribute 'OpenAI Completion Window'",
                f"is {window[:80]!r}: it must be hours followed by 'h'",
                "Use 24h (the window Azure accepts today), or leave it blank.",
            )
        return window

    @staticmethod
    def _max_results_bytes(job_input: JobInput) -> int:
        megabytes = job_input.positive_int("OpenAI Max Results MB", MAX_RESULTS_MB) or DEFAULT_MAX_RESULTS_MB
        return megabytes * 1024 * 1024

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

    def check_run_id(self, run_id: str) -> None:
        run_ids.decode_batch(run_id, self.name)

    # -- hooks -----------------------------------------------------------------------------------

    def submit(self, platform: Any, job: Any, parameters: Mapping[str, Any], run_key: str) -> RunResult:
        config = PlatformConfig.from_host(platform)
        job_input = JobInput(job, parameters)
        deployment = self.deployment(job, job_input)
        endpoint = self._endpoint(job_input)
        window = self._window(job_input)
        max_results = self._max_results_bytes(job_input)
        key = self._run_key(job_input, run_key)
        if parameters.get("requests") is not None:
            return self._submit_rows(config, job_input, deployment, endpoint, window, key, max_results)
        return self._submit_file(config, deployment, self._input_file(job_input), endpoint, window, key, max_results)

    def _submit_rows(
        self, config: PlatformConfig, job_input: JobInput, deployment: str, endpoint: str, window: str, key: str, max_results: int
    ) -> RunResult:
        from .batch_rows import submit_rows

        max_requests = job_input.positive_int("OpenAI Max Requests Per Batch", run_ids.MAX_SHARD_REQUESTS)
        started = utcnow()
        try:
            return submit_rows(
                config,
                job_input,
                deployment,
                job_input.parameters["requests"],
                url=config.surface.batch_endpoint(endpoint),
                endpoint=endpoint,
                window=window,
                run_key=key,
                max_requests=max_requests or run_ids.MAX_SHARD_REQUESTS,
                max_results_bytes=max_results,
            )
        except RemoteError as exc:
            what = f"Submitting the batch rows for deployment '{deployment}'"
            return self._failed_submit(config, deployment, exc, what, started)

    def _submit_file(
        self, config: PlatformConfig, deployment: str, file_id: str, endpoint: str, window: str, key: str, max_results: int
    ) -> RunResult:
        from ..http import data_plane

        api = BatchApi(data_plane(config), config)
        started = utcnow()
        what = f"Submitting the batch for deployment '{deployment}' with input file {file_id}"
        try:
            existing = api.find_by_run_key(key)
            if existing is not None:
                log.info("Re-attached to batch %s for run_key already submitted", existing.id)
                return self._file_result(config, existing, endpoint, max_results)
            problem = api.check_input_file(file_id)
            if problem is not None:
                return _never_created(
                    run_ids.local(deployment, run_ids.LOCAL_BATCH, FAILED), f"{what} failed: {problem}", started
                )
            created = api.create(file_id, config.surface.batch_endpoint(endpoint), window, {RUN_KEY_METADATA: key})
            return self._file_result(config, created, endpoint, max_results)
        except RemoteError as exc:
            return self._failed_submit(config, deployment, exc, what, started)

    def _failed_submit(
        self, config: PlatformConfig, deployment: str, exc: RemoteError, what: str, started: datetime
    ) -> RunResult:
        result = self.failed(
            run_ids.local(deployment, run_ids.LOCAL_BATCH, FAILED),
            exc.detail,
            what=what,
            config=config,
            deployment=deployment,
            started=started,
        )
        return attrs.evolve(result, outputs=_all_outputs())

    def get_status(self, platform: Any, job: Any, run_id: str) -> RunResult:
        decoded = run_ids.decode_batch(run_id, self.name)
        job_input = JobInput(job)
        max_results = self._max_results_bytes(job_input)
        if isinstance(decoded, run_ids.LocalRunId):
            return _never_created(run_id, "The batch was never created: submit failed (see the submit's run message).")
        config = PlatformConfig.from_host(platform)
        try:
            if isinstance(decoded, run_ids.RowsRunId):
                from .batch_rows import status_rows

                return status_rows(config, decoded, max_results)
            from ..http import data_plane

            batch = BatchApi(data_plane(config), config).get(decoded)
            return self._file_result(config, batch, self._endpoint(job_input), max_results)
        except RemoteError as exc:
            return self._in_flight_failure(run_id, exc, config, f"Reading the status of run {run_id}")

    def cancel(self, platform: Any, job: Any, run_id: str) -> RunResult:
        decoded = run_ids.decode_batch(run_id, self.name)
        job_input = JobInput(job)
        max_results = self._max_results_bytes(job_input)
        if isinstance(decoded, run_ids.LocalRunId):
            return _never_created(run_id, "Nothing to cancel: the batch was never created (submit failed).")
        config = PlatformConfig.from_host(platform)
        try:
            if isinstance(decoded, run_ids.RowsRunId):
                from .batch_rows import cancel_rows

                return cancel_rows(config, decoded, max_results)
            from ..http import data_plane

            api = BatchApi(data_plane(config), config)
            current = api.get(decoded)
            if current.terminal:
                result = self._file_result(config, current, self._endpoint(job_input), max_results)
                return attrs.evolve(result, message=f"Not cancelled: it had already ended. {result.message}")
            return self._file_result(config, api.cancel(decoded), self._endpoint(job_input), max_results)
        except RemoteError as exc:
            return self._in_flight_failure(run_id, exc, config, f"Cancelling run {run_id}")

    def _file_result(self, config: PlatformConfig, batch: Batch, endpoint: str, max_results: int) -> RunResult:
        """A file-based batch's result; the read that sees it ended joins its rows too."""
        result = batch.to_result()
        result = attrs.evolve(result, outputs={**result.outputs, **empty_outputs()})
        if not batch.terminal:
            return result
        from ..files import FilesApi
        from .batch_rows import file_run_plan, join_into

        return join_into(result, file_run_plan(batch, endpoint), FilesApi(config), max_results, batch.id)

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


def _all_outputs() -> dict[str, Any]:
    """Every output key, each null: a run that ended before Azure had anything to report."""
    keys = ("output_file_id", "error_file_id", "request_counts_total", "request_counts_completed", "request_counts_failed")
    return {**dict.fromkeys(keys), **empty_outputs()}


def _never_created(run_id: str, message: str, started: datetime | None = None) -> RunResult:
    """A ``{deployment}#batch#Failed`` RunId: decoded locally, like the synchronous ones."""
    return RunResult(
        run_id=run_id,
        status=FAILED,
        outputs=_all_outputs(),
        message=message,
        started_at=started,
        ended_at=utcnow() if started is not None else None,
    )
