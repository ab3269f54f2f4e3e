"""The one gate between a job service and the host: every answer and error leaves it scrubbed.

The hooks call a job service only through ``Guarded``, so whatever Azure (or a gateway, or an
authority) echoed back cannot reach the host's run messages, outputs or exceptions with a secret
of the platform in it, however the service built them (spec second-release §A).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from ..auth import redactor_for
from ..errors import PolysyncAzureOpenAIError
from ..platform import PlatformConfig
from ..redaction import Redactor
from ..results import ImportedJob, RunResult
from .base import JobService

T = TypeVar("T")


class Guarded:
    """A job service whose results and errors are scrubbed of the platform's secrets."""

    def __init__(self, service: JobService) -> None:
        self.service = service

    def __repr__(self) -> str:
        return f"<Guarded {type(self.service).__name__}>"

    def import_jobs(self, platform: Any) -> list[ImportedJob]:
        jobs = _guarded(platform, self.service.import_jobs, platform)
        redact = _redactor(platform)
        return [attrs.evolve(j, description=redact(j.description), attributes=redact.value(dict(j.attributes))) for j in jobs]

    def submit(self, platform: Any, job: Any, parameters: Mapping[str, Any], run_key: str) -> RunResult:
        return _scrubbed(platform, _guarded(platform, self.service.submit, platform, job, parameters, run_key))

    def get_status(self, platform: Any, job: Any, run_id: str) -> RunResult:
        return _scrubbed(platform, _guarded(platform, self.service.get_status, platform, job, run_id))

    def cancel(self, platform: Any, job: Any, run_id: str) -> RunResult:
        return _scrubbed(platform, _guarded(platform, self.service.cancel, platform, job, run_id))

    def monitor_url(self, platform: Any, job: Any, run_id: str) -> str:
        return _redactor(platform)(_guarded(platform, self.service.monitor_url, platform, job, run_id))


def _redactor(platform: Any) -> Redactor:
    try:
        config = PlatformConfig.from_host(platform)
    except PolysyncAzureOpenAIError:
        return Redactor.of(())  # a platform that does not parse never sent anything
    return redactor_for(config)


def _guarded(platform: Any, call: Callable[..., T], *args: Any) -> T:
    try:
        return call(*args)
    except PolysyncAzureOpenAIError as exc:
        _redactor(platform).exception(exc)
        raise


def _scrubbed(platform: Any, result: RunResult) -> RunResult:
    redact = _redactor(platform)
    return attrs.evolve(result, message=redact.optional(result.message), outputs=redact.value(dict(result.outputs)))
