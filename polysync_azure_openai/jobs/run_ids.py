"""The one RunId codec: every form the plugin issues, and the only place that reads them back.

Forms (README "RunIds"; every form 0.1.0 issued still decodes):

- ``batch_…``: an Azure batch id, for a Batch Job whose batch exists.
- ``{deployment}#sync#Success`` / ``{deployment}#sync#Failed``: a Chat Completion or Embedding
  run, which ends inside ``submit``; the RunId records its outcome.
- ``{deployment}#batch#Failed``: a Batch Job submit that failed before any batch existed.
  ``#batch#Success`` is never issued, so it is refused.
- ``{deployment}#rows#{url}#{window}#{created}#{counts}#{plan}#{run_key}``: a Batch Job run from
  the ``requests`` parameter (second-release §G), made of shards that Azure holds: input files
  named from the run key and batches carrying it in their metadata. ``url`` is the line url
  (``/chat/completions``), ``window`` the completion window, ``created`` the Unix time Azure
  gave the first shard's file (no batch of the run is older), ``counts`` the requests per shard
  (``300,300,300,100``), ``plan`` how results are joined (``d``: every ``custom_id`` is the
  default ``row-{index}``, ``c``: some are the caller's; then ``n``: no item asked for JSON,
  ``j``: every item did, ``m``: some did), ``run_key`` the host's run key, percent-encoded.

A RunId travels between worker processes and restarts, so it carries everything later hooks
need and nothing secret.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote, unquote

import attrs

from ..errors import ConfigurationError
from ..ids import BATCH_ID, COMPLETION_WINDOW, DEPLOYMENT_NAME, lone_surrogate, shown
from ..results import FAILED, SUCCESS
from . import BATCH_ENDPOINTS

SYNC: Final = "sync"
LOCAL_BATCH: Final = "batch"
ROWS: Final = "rows"
#: The host stores RunIds of at most this many characters.
MAX_RUN_ID: Final = 1024
MAX_SHARDS: Final = 20
MAX_SHARD_REQUESTS: Final = 100_000
MAX_RUN_KEY: Final = 512
ID_PLANS: Final = ("d", "c")
#: The line urls a RunId may record: each batch endpoint, bare (dated api-versions) or on v1.
LINE_URLS: Final = (*BATCH_ENDPOINTS, *(f"/v1{endpoint}" for endpoint in BATCH_ENDPOINTS))
FORMAT_PLANS: Final = ("n", "j", "m")
_SEPARATOR: Final = "#"
#: The outcomes each local kind is issued with.
_ISSUED: Final = {SYNC: (SUCCESS, FAILED), LOCAL_BATCH: (FAILED,)}


@attrs.frozen
class LocalRunId:
    """A RunId that carries its run's outcome instead of naming something in Azure."""

    deployment: str
    kind: str
    status: str

    def __str__(self) -> str:
        return _SEPARATOR.join((self.deployment, self.kind, self.status))


@attrs.frozen
class RowsRunId:
    """A run from ``requests``: what every later hook needs to find its shards in Azure."""

    deployment: str
    url: str
    window: str
    #: Unix seconds Azure gave the first shard's input file.
    created: int
    #: Requests per shard, in shard order.
    counts: tuple[int, ...]
    #: "d" or "c" (custom ids), then "n", "j" or "m" (JSON formats): see the module docstring.
    plan: str
    run_key: str

    def __str__(self) -> str:
        return _SEPARATOR.join(
            (
                self.deployment,
                ROWS,
                self.url,
                self.window,
                str(self.created),
                ",".join(str(count) for count in self.counts),
                self.plan,
                quote(self.run_key, safe=""),
            )
        )

    @property
    def shards(self) -> int:
        return len(self.counts)

    @property
    def rows(self) -> int:
        return sum(self.counts)

    def first_row(self, shard: int) -> int:
        """The input index of the first request of ``shard`` (1-based)."""
        return sum(self.counts[: shard - 1])

    @property
    def default_ids(self) -> bool:
        return self.plan[0] == "d"

    @property
    def json_formats(self) -> str:
        return self.plan[1]


def _parse_rows(run_id: str) -> RowsRunId | None:
    parts = run_id.split(_SEPARATOR)
    if len(parts) != 8 or parts[1] != ROWS or len(run_id) > MAX_RUN_ID:
        return None
    deployment, _, url, window, created, counts, plan, key = parts
    if not DEPLOYMENT_NAME.fullmatch(deployment) or url not in LINE_URLS or not COMPLETION_WINDOW.fullmatch(window):
        return None
    if not created.isascii() or not created.isdigit() or len(created) > 12:
        return None
    numbers = counts.split(",")
    if not 1 <= len(numbers) <= MAX_SHARDS or not all(n.isascii() and n.isdigit() and len(n) <= 6 for n in numbers):
        return None
    sizes = tuple(int(n) for n in numbers)
    if not all(1 <= n <= MAX_SHARD_REQUESTS for n in sizes):
        return None
    if len(plan) != 2 or plan[0] not in ID_PLANS or plan[1] not in FORMAT_PLANS:
        return None
    try:
        run_key = unquote(key, errors="strict") if key.isascii() else ""
    except UnicodeDecodeError:
        return None
    if not run_key or len(run_key) > MAX_RUN_KEY or lone_surrogate(run_key) is not None or quote(run_key, safe="") != key:
        return None
    return RowsRunId(deployment, url, window, int(created), sizes, plan, run_key)


def local(deployment: str, kind: str, status: str) -> str:
    """The RunId of a run that ended inside ``submit``."""
    if status not in _ISSUED[kind]:
        raise ValueError(f"a {kind} RunId is never issued with status {status}")
    return str(LocalRunId(deployment, kind, status))


def _parse_local(run_id: str) -> LocalRunId | None:
    parts = run_id.split(_SEPARATOR)
    if len(parts) != 3:
        return None
    deployment, kind, status = parts
    if kind not in _ISSUED or status not in _ISSUED[kind] or not DEPLOYMENT_NAME.fullmatch(deployment):
        return None
    return LocalRunId(deployment, kind, status)


def _forms(kind: str) -> str:
    return " or ".join(f"'<deployment>#{kind}#{status}'" for status in _ISSUED[kind])


def decode_sync(run_id: Any, job_type: str) -> LocalRunId:
    """A Chat Completion or Embedding RunId, or a clear error."""
    decoded = _parse_local(run_id) if isinstance(run_id, str) else None
    if decoded is None or decoded.kind != SYNC:
        raise ConfigurationError(
            f"RunId {shown(run_id)} is not one this plugin issued for {job_type}: expected {_forms(SYNC)}. "
            "Check that the run belongs to this job type."
        )
    return decoded


def decode_batch(run_id: Any, job_type: str) -> str | LocalRunId | RowsRunId:
    """A Batch Job RunId: the batch id, the RunId of a run from ``requests``, or the local RunId
    of a submit that created nothing."""
    if isinstance(run_id, str):
        if BATCH_ID.fullmatch(run_id):
            return run_id
        decoded = _parse_local(run_id)
        if decoded is not None and decoded.kind == LOCAL_BATCH:
            return decoded
        sharded = _parse_rows(run_id)
        if sharded is not None:
            return sharded
    raise ConfigurationError(
        f"RunId {shown(run_id)} is not one this plugin issued for {job_type}: expected an Azure batch id "
        f"('batch_...'), '<deployment>#rows#...' or {_forms(LOCAL_BATCH)}. Check that the run belongs to this job type."
    )


def is_batch_run_id(run_id: str) -> bool:
    """True for every form a Batch Job issues (the CLI's guess of a RunId's job type)."""
    if BATCH_ID.fullmatch(run_id) or _parse_rows(run_id) is not None:
        return True
    decoded = _parse_local(run_id)
    return decoded is not None and decoded.kind == LOCAL_BATCH


def is_sync_run_id(run_id: str) -> bool:
    """True for the forms Chat Completion and Embedding issue."""
    decoded = _parse_local(run_id)
    return decoded is not None and decoded.kind == SYNC


def deployment_of(run_id: str) -> str | None:
    """The deployment a local or rows RunId names; None for a batch id."""
    decoded = _parse_local(run_id) or _parse_rows(run_id)
    return decoded.deployment if decoded is not None else None
