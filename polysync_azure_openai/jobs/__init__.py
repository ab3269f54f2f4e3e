"""The three job types. This module holds only their names, so the hook layer can match
``job.job_type`` without importing requests or azure-identity."""

from typing import Final

PLATFORM_TYPE: Final = "Azure OpenAI"
CHAT: Final = "Azure OpenAI Chat Completion"
EMBEDDING: Final = "Azure OpenAI Embedding"
BATCH: Final = "Azure OpenAI Batch Job"
JOB_TYPES: Final = (CHAT, EMBEDDING, BATCH)
