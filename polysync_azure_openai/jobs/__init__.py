"""The three job types. This module holds only their names, so the hook layer can match
``job.job_type`` without importing requests or azure-identity."""

from typing import Final

PLATFORM_TYPE: Final = "Azure OpenAI"
CHAT: Final = "Azure OpenAI Chat Completion"
EMBEDDING: Final = "Azure OpenAI Embedding"
BATCH: Final = "Azure OpenAI Batch Job"
JOB_TYPES: Final = (CHAT, EMBEDDING, BATCH)
#: 'Model Format' of Azure OpenAI models; any other is a Foundry model (second-release §F).
OPENAI_FORMAT: Final = "OpenAI"
#: The endpoints a batch may call (wire-samples §7), used by the Batch job and batch input files.
BATCH_ENDPOINTS: Final = ("/chat/completions", "/embeddings")
