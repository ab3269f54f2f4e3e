"""The hooks of a Batch Job run from ``requests`` (second-release §G): submit, status and cancel.

Submit writes the shards, uploads each under its name (or finds it there after a lost answer),
waits up to about a minute for Azure to process them, and creates the batches whose turn it is.
Every later hook reads the run back from Azure (``batch_shards``) and moves it on; the read that
sees it ended joins the per-row results (``batch_results``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any, Final

from ..errors import ConfigurationError, RemoteError
from ..files import FileInfo, FilesApi
from ..platform import PlatformConfig
from ..results import CANCELLED, FAILED, RUNNING, SUCCESS, UNKNOWN, RunResult
from . import run_ids
from .base import JobInput
from .batch_api import BatchApi
from .batch_items import LineBuilder
from .batch_join import joined_outputs
from .batch_requests import RequestsPlan, spooled_shards
from .batch_results import JoinPlan, JoinUnavailable, ShardFiles, Tally, empty_outputs, write_jsonl
from .batch_shards import GIVE_UP, RunView, ShardedRun, ShardState, describe_refusal_failure, input_name, quota_decision

log = logging.getLogger(__name__)

IN_FLIGHT_LABEL: Final = "in flight"


def results_command(run_id: str) -> str:
    return f"polysync-azure-openai batch results '{run_id}' --out results.jsonl --config platform.toml"


def submit_rows(
    config: PlatformConfig,
    job_input: JobInput,
    deployment: str,
    value: Any,
    *,
    url: str,
    endpoint: str,
    window: str,
    run_key: str,
    max_requests: int,
    max_results_bytes: int,
) -> RunResult:
    """Check and write every shard, then upload and create; the RunId shape is known before any call."""
    from ..http import data_plane

    builder = LineBuilder(job_input, config, deployment, url, endpoint)
    with spooled_shards(job_input, value, builder, max_requests=max_requests) as plan:
        probe = run_ids.RowsRunId(deployment, url, window, 10**11, plan.counts, plan.plan, run_key)
        if len(str(probe)) > run_ids.MAX_RUN_ID:
            raise job_input.fail(
                "run_key",
                f"makes the RunId {len(str(probe))} characters long, more than the {run_ids.MAX_RUN_ID} a host stores",
                "This is a host error: the host's run keys must be shorter.",
            )
        files = FilesApi(config)
        api = BatchApi(data_plane(config), config)
        uploaded = _upload_shards(files, plan, run_key)
        created = min((int(f.created_at.timestamp()) for f in uploaded if f.created_at), default=int(api.now()))
        run = run_ids.RowsRunId(deployment, url, window, created, plan.counts, plan.plan, run_key)
    sharded = ShardedRun(run, api, files)
    try:
        view = sharded.wait_for_files(sharded.observe(with_files=True))
        return move_on(sharded, view, max_results_bytes)
    except RemoteError as exc:
        # The files are there, and batches may be: never Failed now; the next poll goes on (§A).
        return RunResult(
            run_id=str(run),
            status=RUNNING,
            outputs={**_v010_outputs(run), **empty_outputs()},
            message=f"The input files are uploaded; creating the batches failed for now ({exc.detail.describe()}). "
            "The next status read creates what is missing.",
        )


def _v010_outputs(run: run_ids.RowsRunId) -> dict[str, Any]:
    return {
        "output_file_id": None,
        "error_file_id": None,
        "request_counts_total": run.rows,
        "request_counts_completed": 0,
        "request_counts_failed": 0,
    }


def _upload_shards(files: FilesApi, plan: RequestsPlan, run_key: str) -> list[FileInfo]:
    """Each shard's file under its name: an existing one (a re-submit after a lost answer) is reused."""
    existing = files.listing("batch")
    uploaded = []
    for shard in plan.shards:
        name = input_name(run_key, shard.number)
        found = [f for f in existing if f.filename == name and f.status not in ("deleted", "deleting")]
        if found:
            log.info("Reusing %s (%s) for shard %d", name, found[0].id, shard.number)
            uploaded.append(found[0])
            continue
        with shard.path.open("rb") as handle:
            uploaded.append(files.upload_as(handle, name, "batch"))
    return uploaded


def status_rows(config: PlatformConfig, run: run_ids.RowsRunId, max_results_bytes: int) -> RunResult:
    from ..http import data_plane

    sharded = ShardedRun(run, BatchApi(data_plane(config), config), FilesApi(config))
    return move_on(sharded, sharded.observe(), max_results_bytes)


def cancel_rows(config: PlatformConfig, run: run_ids.RowsRunId, max_results_bytes: int) -> RunResult:
    from ..http import data_plane

    sharded = ShardedRun(run, BatchApi(data_plane(config), config), FilesApi(config))
    view = sharded.observe(with_files=True)
    before = summarize(view, [])
    if before.status in (SUCCESS, FAILED, CANCELLED):
        result = finish(sharded, view, before, max_results_bytes)
        return _with_message(result, f"Not cancelled: it had already ended. {result.message}")
    view = sharded.cancel(view)
    return finish(sharded, view, summarize(view, []), max_results_bytes)


def move_on(sharded: ShardedRun, view: RunView, max_results_bytes: int) -> RunResult:
    advanced = sharded.advance(view)
    return finish(sharded, advanced.view, summarize(advanced.view, advanced.notes, advanced.refused), max_results_bytes)


def _with_message(result: RunResult, message: str) -> RunResult:
    import attrs

    return attrs.evolve(result, message=message)


# -- what a reading says -----------------------------------------------------------------------------


def _shard_label(view: RunView, shard: ShardState, refused: Mapping[int, str]) -> str:
    current = shard.current
    if current is not None:
        return IN_FLIGHT_LABEL if not current.terminal else current.status
    if view.cancelled:
        return "cancelled"
    if shard.number in refused:
        return "refused by Azure"
    if shard.refusals:
        decision = quota_decision(shard, view.others(shard), view.now)
        return "refused for quota" if decision == GIVE_UP else "waiting for quota"
    file = shard.input_file
    if file is None:
        return "not created yet" if view.files is None else "input file missing"
    if file.status == "error":
        return "input file refused"
    if file.processing:
        return "waiting for Azure to process its input file"
    return "not created yet"


FATAL_LABELS: Final = frozenset({"refused for quota", "refused by Azure", "input file missing", "input file refused"})


def summarize(view: RunView, notes: list[str], refused: Mapping[int, str] | None = None) -> RunResult:
    """The run's status, 0.1.0 outputs and message from one reading (results come in ``finish``)."""
    run = view.run
    labels = [_shard_label(view, shard, refused or {}) for shard in view.shards]
    currents = [shard.current for shard in view.shards if shard.current is not None]
    completed = sum(b.completed or 0 for b in currents)
    failed = sum(b.failed or 0 for b in currents)
    fatal = [(shard, label) for shard, label in zip(view.shards, labels, strict=True) if label in FATAL_LABELS]
    unfinished = not set(labels) <= {"completed", "failed", "expired", "cancelled"}
    if IN_FLIGHT_LABEL in labels or (unfinished and not fatal and not view.cancelled):
        status = RUNNING
    elif fatal or "failed" in labels or "expired" in labels:
        status = FAILED
    elif "cancelled" in labels:
        status = CANCELLED
    else:
        status = SUCCESS
    tally: dict[str, int] = {}
    for label in labels:
        tally[label] = tally.get(label, 0) + 1
    shards_text = ", ".join(f"{count} {label}" for label, count in tally.items())
    message = (
        f"{completed + failed:,} of {run.rows:,} requests done, {failed:,} failed, in {run.shards} "
        f"shard{'s' if run.shards != 1 else ''}: {shards_text}."
    )
    for shard, label in zip(view.shards, labels, strict=True):
        if label == "waiting for quota":
            message += (
                f" Shard {shard.number} waits for the enqueued-token quota ({shard.refusal_text(whole=False)}; refused "
                f"{len(shard.refusals)} time(s)): it is created again when another shard finishes or 5 minutes after "
                "the refusal."
            )
    for shard, label in fatal:
        if label == "refused for quota":
            message += " " + describe_refusal_failure(shard, run)
        elif label == "refused by Azure":
            message += f" Azure refused to create shard {shard.number}'s batch: {(refused or {})[shard.number]}."
        elif label == "input file missing":
            message += f" Shard {shard.number}'s input file {input_name(run.run_key, shard.number)} is gone from the resource."
        else:
            details = shard.input_file.status_details if shard.input_file else None
            message += f" Azure refused shard {shard.number}'s input file: {details or 'no detail given'}."
    for shard in view.shards:
        if shard.current is not None and shard.current.status in ("failed", "expired"):
            message += f" Shard {shard.number}: {shard.current.describe()}"
    if view.cancelled and status == RUNNING:
        message += " The run was cancelled: its shards in flight are being cancelled and no shard is created any more."
    elif fatal and status == RUNNING:
        message += " No further shard is created; the run fails once the shards in flight have ended."
    if notes:
        message += " Azure: " + "; ".join(notes) + "."
    started = [b.created_at for s in view.shards for b in s.batches if b.created_at is not None]
    ended = [b.ended_at for b in currents if b.ended_at is not None]
    single = currents[0] if run.shards == 1 and currents else None
    return RunResult(
        run_id=str(run),
        status=status,
        outputs={
            "output_file_id": single.output_file_id if single else None,
            "error_file_id": single.error_file_id if single else None,
            "request_counts_total": run.rows,
            "request_counts_completed": completed,
            "request_counts_failed": failed,
            **empty_outputs(),
        },
        message=message,
        started_at=min(started) if started else None,
        ended_at=(max(ended) if ended else datetime.fromtimestamp(view.now, UTC)) if status != RUNNING else None,
    )


def finish(sharded: ShardedRun, view: RunView, result: RunResult, max_results_bytes: int) -> RunResult:
    """The results of an ended run joined into its outputs; a failed download keeps polling."""
    if result.status == RUNNING:
        return result
    return join_into(result, join_plan(sharded, view), sharded.files, max_results_bytes, str(view.run))


def join_plan(sharded: ShardedRun, view: RunView) -> JoinPlan:
    """What the join reads of an ended run: each shard's rows and files."""
    run = view.run
    shards = []
    for shard in view.shards:
        current = shard.current
        shards.append(
            ShardFiles(
                number=shard.number,
                first_row=run.first_row(shard.number),
                count=run.counts[shard.number - 1],
                input_file_id=sharded.input_file_id(view, shard) if not run.default_ids or run.json_formats == "m" else None,
                output_file_id=current.output_file_id if current else None,
                error_file_id=current.error_file_id if current else None,
            )
        )
    return JoinPlan(run.url.endswith("/chat/completions"), run.default_ids, run.json_formats, tuple(shards))


def join_into(result: RunResult, plan: JoinPlan, files: FilesApi, max_results_bytes: int, run_id: str) -> RunResult:
    """``result`` with the §G outputs of its ended run; Unknown when a download failed for now."""
    import attrs

    from ..auth import redactor_for

    try:
        outputs, too_big = joined_outputs(plan, files, max_results_bytes, redactor_for(files.config))
    except JoinUnavailable as exc:
        return attrs.evolve(result, message=f"{result.message} The results cannot be joined: {exc}.")
    except RemoteError as exc:
        return attrs.evolve(
            result,
            status=UNKNOWN,
            ended_at=None,
            message=f"The run has ended ({result.status}), but reading its results failed: {exc.detail.describe()}. "
            "Polling continues.",
        )
    message = result.message or ""
    counts = ", ".join(f"{outputs[k]:,} {k.removesuffix('_count').replace('_', ' ')}" for k in outputs if k.endswith("_count"))
    message += f" Rows: {counts}; {outputs['total_tokens']:,} tokens."
    if too_big:
        limit = max_results_bytes // (1024 * 1024)
        files_text = ", ".join(plan.output_file_ids + plan.error_file_ids) or "none"
        message += (
            f" 'results' is null: its JSON would pass 'OpenAI Max Results MB' ({limit}). The rows are in the "
            f"output and error files ({files_text}); write them joined with: {results_command(run_id)}"
        )
    return attrs.evolve(result, outputs={**result.outputs, **outputs}, message=message)


def file_run_plan(batch: Any, endpoint: str) -> JoinPlan:
    """A 0.1.0 batch from an uploaded file: one shard, its order from the input file."""
    shard = ShardFiles(1, 0, batch.total or 0, batch.input_file_id, batch.output_file_id, batch.error_file_id)
    return JoinPlan((batch.endpoint or endpoint).endswith("/chat/completions"), False, "m", (shard,))


def export_results(config: PlatformConfig, run_id: str, handle: IO[bytes]) -> tuple[RunResult, Tally | None]:
    """Write the joined rows of any ended batch run to ``handle``, one JSON line each, streamed.

    Returns the run's status read, and the counts when it had ended (None when it had not: then
    nothing is written). Every row is scrubbed of the platform's secrets, as outputs are.
    """
    from ..auth import redactor_for
    from ..http import data_plane
    from . import BATCH

    decoded = run_ids.decode_batch(run_id, BATCH)
    if isinstance(decoded, run_ids.LocalRunId):
        raise ConfigurationError(f"RunId {run_id!r} names a run whose batch was never created: it has no results.")
    api = BatchApi(data_plane(config), config)
    files = FilesApi(config)
    if isinstance(decoded, run_ids.RowsRunId):
        sharded = ShardedRun(decoded, api, files)
        view = sharded.observe()
        result = summarize(view, [])
        plan = join_plan(sharded, view) if result.status != RUNNING else None
    else:
        batch = api.get(decoded)
        result = batch.to_result()
        plan = file_run_plan(batch, "/chat/completions") if batch.terminal else None
    if plan is None:
        return result, None
    return result, write_jsonl(plan, files, handle, redactor_for(config))
