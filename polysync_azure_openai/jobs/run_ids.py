"""The one RunId codec: every form the plugin issues, and the only place that reads them back.

Forms (README "RunIds"; every form 0.1.0 issued still decodes):

- ``batch_…``: an Azure batch id, for a Batch Job whose batch exists.
- ``{deployment}#sync#Success`` / ``{deployment}#sync#Failed``: a Chat Completion or Embedding
  run, which ends inside ``submit``; the RunId records its outcome.
- ``{deployment}#batch#Failed``: a Batch Job submit that failed before any batch existed.
  ``#batch#Success`` is never issued, so it is refused.

A RunId travels between worker processes and restarts, so it carries everything later hooks
need and nothing secret.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from ..errors import ConfigurationError
from ..ids import BATCH_ID, DEPLOYMENT_NAME, shown
from ..results import FAILED, SUCCESS

SYNC: Final = "sync"
LOCAL_BATCH: Final = "batch"
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


def decode_batch(run_id: Any, job_type: str) -> str | LocalRunId:
    """A Batch Job RunId: the batch id, or the local RunId of a submit that created nothing."""
    if isinstance(run_id, str):
        if BATCH_ID.fullmatch(run_id):
            return run_id
        decoded = _parse_local(run_id)
        if decoded is not None and decoded.kind == LOCAL_BATCH:
            return decoded
    raise ConfigurationError(
        f"RunId {shown(run_id)} is not one this plugin issued for {job_type}: expected an Azure batch id "
        f"('batch_...') or {_forms(LOCAL_BATCH)}. Check that the run belongs to this job type."
    )


def is_batch_run_id(run_id: str) -> bool:
    """True for every form a Batch Job issues (the CLI's guess of a RunId's job type)."""
    if BATCH_ID.fullmatch(run_id):
        return True
    decoded = _parse_local(run_id)
    return decoded is not None and decoded.kind == LOCAL_BATCH


def is_sync_run_id(run_id: str) -> bool:
    """True for the forms Chat Completion and Embedding issue."""
    decoded = _parse_local(run_id)
    return decoded is not None and decoded.kind == SYNC


def deployment_of(run_id: str) -> str | None:
    """The deployment a local RunId names; None for a batch id."""
    decoded = _parse_local(run_id)
    return decoded.deployment if decoded is not None else None
