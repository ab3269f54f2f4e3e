"""Azure OpenAI Chat Completion (spec §2, second-release §C)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from ..errors import AzureServiceError, ErrorDetail
from ..platform import PlatformConfig
from ..results import FAILED
from ..troubleshooting import REASONING_BUDGET, unparsable_json_fix
from . import CHAT, chat_body
from .base import JobInput, Outcome, Prepared, SynchronousService, int_or_none, json_object, unusable_answer

FINISH_NOTES: Final = {
    "length": "The answer was cut short by the token limit ('OpenAI Max Tokens').",
    "content_filter": "The answer was cut short by Azure OpenAI's content filter.",
}


class ChatCompletionService(SynchronousService):
    name: ClassVar[str] = CHAT
    operation: ClassVar[str] = "chat"
    path_suffix: ClassVar[str] = "chat/completions"

    def prepare(self, job_input: JobInput, config: PlatformConfig) -> Prepared:
        return chat_body.build(job_input, config)

    def call(self, client: Any, config: PlatformConfig, deployment: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        try:
            return super().call(client, config, deployment, body)
        except AzureServiceError as exc:
            # A reasoning model whose 'Model Name' was not imported: resend once as Azure asks.
            if "max_tokens" in body and _rejects_max_tokens(exc.detail):
                retry = {k: v for k, v in body.items() if k != "max_tokens"}
                retry["max_completion_tokens"] = body["max_tokens"]
                return super().call(client, config, deployment, retry)
            raise

    def read_outputs(self, payload: Mapping[str, Any], request_id: str, prepared: Prepared) -> Outcome:
        choices = payload.get("choices")
        usage = payload.get("usage")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise unusable_answer("has no choices", request_id)
        if not isinstance(usage, dict):
            raise unusable_answer("has no usage", request_id)
        choice = choices[0]
        content = json_object(choice, "message").get("content")
        finish_reason = choice.get("finish_reason")
        model = payload.get("model")
        outputs: dict[str, Any] = {
            "response": content if isinstance(content, str) else None,
            "prompt_tokens": int_or_none(usage.get("prompt_tokens")),
            "completion_tokens": int_or_none(usage.get("completion_tokens")),
            "total_tokens": int_or_none(usage.get("total_tokens")),
            "finish_reason": finish_reason if isinstance(finish_reason, str) else None,
            "response_json": None,
            "model": model if isinstance(model, str) else None,
            "cached_tokens": int_or_none(json_object(usage, "prompt_tokens_details").get("cached_tokens")) or 0,
            "reasoning_tokens": int_or_none(json_object(usage, "completion_tokens_details").get("reasoning_tokens")) or 0,
        }
        tokens = (
            f"{outputs['prompt_tokens']} prompt + {outputs['completion_tokens']} completion = {outputs['total_tokens']} "
            f"tokens, {outputs['reasoning_tokens']} of them reasoning (request id {request_id})"
        )
        finish = outputs["finish_reason"]
        if finish == "length" and not content and (prepared.reasoning or outputs["reasoning_tokens"]):
            # The budget went to reasoning: an empty answer is no answer (replaces spec §2 for this case).
            message = f"Chat completion gave an empty answer (finish_reason length); {tokens}. Fix: {REASONING_BUDGET}"
            return Outcome(outputs, message, FAILED)
        if prepared.json_format and isinstance(content, str):
            try:
                outputs["response_json"] = json.loads(content)
            except (ValueError, RecursionError):
                message = (
                    "Chat completion answered text that is not the JSON the response format asks for "
                    f"(finish_reason {finish or 'none'}; the text is in 'response'); {tokens}. "
                    f"Fix: {unparsable_json_fix(finish)}"
                )
                return Outcome(outputs, message, FAILED)
        text = f"Chat completion finished ({finish or 'no finish_reason'}); {tokens}."
        note = FINISH_NOTES.get(str(finish))
        return Outcome(outputs, f"{text} {note}" if note else text)


def _rejects_max_tokens(detail: ErrorDetail) -> bool:
    return detail.status == 400 and "max_tokens" in detail.message and "max_completion_tokens" in detail.message
