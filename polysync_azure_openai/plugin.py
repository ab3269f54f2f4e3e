"""The hook implementations: three sibling job types, registered by three entry points.

Each hookimpl checks that the platform (and job) is this job type's and delegates to the job
type's service in ``polysync_azure_openai.jobs``. Those services, and with them requests and
azure-identity, are imported on the first call, not when the host loads the plugin: each
sibling's ``load_service`` imports its module inside the function, so mypy and "go to
definition" still reach the service class.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .hookspecs import hookimpl
from .jobs import BATCH, CHAT, EMBEDDING, PLATFORM_TYPE

if TYPE_CHECKING:
    from .jobs.guard import Guarded
    from .results import ImportedJob, RunResult


class AzureOpenAIJobTypePlugin:
    """What the three siblings share; each subclass names its job type and service class."""

    job_type: ClassVar[str]

    def __init__(self) -> None:
        self._service: Guarded | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.job_type!r}>"

    @staticmethod
    def load_service() -> Guarded:
        """Import and build the service that does this job type's work (first call only)."""
        raise NotImplementedError

    @property
    def service(self) -> Guarded:
        if self._service is None:
            with self._lock:
                if self._service is None:
                    self._service = self.load_service()
        return self._service

    def _ours(self, platform: Any, job: Any) -> bool:
        return getattr(platform, "platform_type", None) == PLATFORM_TYPE and getattr(job, "job_type", None) == self.job_type

    @hookimpl(wrapper=True, specname="import_jobs")
    def share_one_listing(self, platform: Any) -> Generator[None, list[ImportedJob] | None, list[ImportedJob] | None]:
        """Open the import scope once per host call, so the siblings share one ARM listing."""
        if getattr(platform, "platform_type", None) != PLATFORM_TYPE:
            return (yield)
        from .discovery import import_scope
        from .platform import PlatformConfig

        with import_scope(PlatformConfig.from_host(platform)):
            return (yield)

    @hookimpl
    def import_jobs(self, platform: Any) -> list[ImportedJob] | None:
        if getattr(platform, "platform_type", None) != PLATFORM_TYPE:
            return None
        return self.service.import_jobs(platform)

    @hookimpl
    def submit(self, platform: Any, job: Any, parameters: Mapping[str, Any], run_key: str) -> RunResult | None:
        if not self._ours(platform, job):
            return None
        return self.service.submit(platform, job, parameters, run_key)

    @hookimpl
    def get_status(self, platform: Any, job: Any, run_id: str) -> RunResult | None:
        if not self._ours(platform, job):
            return None
        return self.service.get_status(platform, job, run_id)

    @hookimpl
    def cancel(self, platform: Any, job: Any, run_id: str) -> RunResult | None:
        if not self._ours(platform, job):
            return None
        return self.service.cancel(platform, job, run_id)

    @hookimpl
    def monitor_url(self, platform: Any, job: Any, run_id: str) -> str | None:
        if not self._ours(platform, job):
            return None
        return self.service.monitor_url(platform, job, run_id)


class ChatCompletion(AzureOpenAIJobTypePlugin):
    job_type = CHAT

    @staticmethod
    def load_service() -> Guarded:
        from .jobs.chat import ChatCompletionService
        from .jobs.guard import Guarded

        return Guarded(ChatCompletionService())


class Embedding(AzureOpenAIJobTypePlugin):
    job_type = EMBEDDING

    @staticmethod
    def load_service() -> Guarded:
        from .jobs.embedding import EmbeddingService
        from .jobs.guard import Guarded

        return Guarded(EmbeddingService())


class BatchJob(AzureOpenAIJobTypePlugin):
    job_type = BATCH

    @staticmethod
    def load_service() -> Guarded:
        from .jobs.batch import BatchService
        from .jobs.guard import Guarded

        return Guarded(BatchService())


# The entry points name these instances: pluggy calls methods on the registered object.
chat = ChatCompletion()
embedding = Embedding()
batch = BatchJob()
