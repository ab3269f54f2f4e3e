"""Azure OpenAI Embedding (spec §3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..platform import PlatformConfig
from . import EMBEDDING
from .base import JobInput, SynchronousService, int_or_none, unusable_answer


class EmbeddingService(SynchronousService):
    name: ClassVar[str] = EMBEDDING
    operation: ClassVar[str] = "embeddings"
    path_suffix: ClassVar[str] = "embeddings"

    def build_body(self, job_input: JobInput, config: PlatformConfig, model_name: str | None) -> dict[str, Any]:
        return {"input": job_input.required_text("input")}

    def read_outputs(self, payload: Mapping[str, Any], request_id: str) -> tuple[dict[str, Any], str]:
        data = payload.get("data")
        usage = payload.get("usage")
        if not isinstance(data, list) or not data:
            raise unusable_answer("has no data", request_id)
        if not isinstance(usage, dict):
            raise unusable_answer("has no usage", request_id)
        # Azure may order items freely: join on index.
        item = next((d for d in data if isinstance(d, dict) and d.get("index") == 0), data[0])
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or not vector or not isinstance(vector[0], (int, float)):
            raise unusable_answer("has no embedding array (base64 encoding is not requested by this plugin)", request_id)
        outputs = {
            "embedding": vector,
            "prompt_tokens": int_or_none(usage.get("prompt_tokens")),
            "total_tokens": int_or_none(usage.get("total_tokens")),
        }
        return outputs, (
            f"Embedding of {len(vector)} dimensions; {outputs['prompt_tokens']} prompt tokens (request id {request_id})."
        )
