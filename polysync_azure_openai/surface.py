"""The data-plane surface of files and batches: their paths, their query, and batch line urls.

Every files and batches path the plugin sends, and the ``url`` of every batch input line it
writes, comes from here, so the v1 API (second-release §B: ``/openai/v1/...``, no api-version,
``/v1/chat/completions`` in lines) changes one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .platform import PlatformConfig

FILES: Final = "/openai/files"
BATCHES: Final = "/openai/batches"


def query(config: PlatformConfig) -> Mapping[str, str]:
    """The query every files and batches call carries."""
    return {"api-version": config.api_version}


def file_path(file_id: str | None = None, *, content: bool = False) -> str:
    """``/openai/files``, one file, or its content; ids are checked by the caller."""
    if file_id is None:
        return FILES
    return f"{FILES}/{file_id}/content" if content else f"{FILES}/{file_id}"


def batch_path(batch_id: str | None = None, *, cancel: bool = False) -> str:
    if batch_id is None:
        return BATCHES
    return f"{BATCHES}/{batch_id}/cancel" if cancel else f"{BATCHES}/{batch_id}"


def line_url(config: PlatformConfig, endpoint: str) -> str:
    """The ``url`` of a batch input line, and the batch's ``endpoint``, for a job's endpoint.

    ``endpoint`` is the job's ``OpenAI Batch Endpoint`` (``/chat/completions`` or ``/embeddings``).
    """
    return endpoint


#: Every line url a RunId may record (wire-samples §7; v1 adds its ``/v1/...`` forms).
LINE_URLS: Final = ("/chat/completions", "/embeddings")
