"""Azure OpenAI Chat Completion (spec §2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from ..errors import AzureServiceError, ErrorDetail
from ..platform import PlatformConfig
from . import CHAT
from .base import JobInput, SynchronousService, int_or_none, json_object, unusable_answer

#: Reasoning models refuse max_tokens and want max_completion_tokens (spec §2 Decision), and
#: refuse temperature (second-release §C). gpt-5-chat shares the prefix but is a chat model.
REASONING_PREFIXES: Final = ("o1", "o3", "o4", "gpt-5")
NOT_REASONING_PREFIXES: Final = ("gpt-5-chat",)
#: Azure answers a reasoning model on an older dated api-version with a 400 (second-release §B).
REASONING_MIN_API_VERSION: Final = "2024-12-01-preview"
FINISH_NOTES: Final = {
    "length": "The answer was cut short by the token limit ('OpenAI Max Tokens').",
    "content_filter": "The answer was cut short by Azure OpenAI's content filter.",
}


def is_reasoning_model(model_name: str | None) -> bool:
    if not model_name:
        return False
    name = model_name.lower()
    return name.startswith(REASONING_PREFIXES) and not name.startswith(NOT_REASONING_PREFIXES)


def _older_than(api_version: str, minimum: str) -> bool:
    """Dated versions order by date; a GA version of the same date as a preview is not older."""
    return api_version[:10] < minimum[:10]


class ChatCompletionService(SynchronousService):
    name: ClassVar[str] = CHAT
    operation: ClassVar[str] = "chat"
    path_suffix: ClassVar[str] = "chat/completions"

    def build_body(self, job_input: JobInput, config: PlatformConfig, model_name: str | None) -> dict[str, Any]:
        user_prompt = job_input.required_text("user_prompt")
        system_prompt = job_input.text("system_prompt") or job_input.attribute("OpenAI System Prompt")
        max_tokens = job_input.positive_int("OpenAI Max Tokens")
        temperature = job_input.decimal("OpenAI Temperature", 0.0, 2.0)
        reasoning = is_reasoning_model(model_name)
        if reasoning:
            # Refused here rather than by Azure: its 400 would not say which setting to change.
            if _older_than(config.api_version, REASONING_MIN_API_VERSION):
                raise job_input.fail(
                    f"model {model_name!r} (attribute 'Model Name')",
                    "is a reasoning model, which Azure serves only on api-version "
                    f"{REASONING_MIN_API_VERSION} and later, but the platform's 'OpenAI API Version' is "
                    f"{config.api_version!r}",
                    f"Set the platform's 'OpenAI API Version' to {REASONING_MIN_API_VERSION} or later.",
                )
            if temperature is not None:
                raise job_input.fail(
                    "attribute 'OpenAI Temperature'",
                    f"is set, but {model_name!r} is a reasoning model, which refuses temperature",
                    "Leave 'OpenAI Temperature' blank for this job.",
                )
        messages: list[dict[str, str]] = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.append({"role": "user", "content": user_prompt})
        body: dict[str, Any] = {"messages": messages}
        if max_tokens is not None:
            body["max_completion_tokens" if reasoning else "max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        return body

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

    def read_outputs(self, payload: Mapping[str, Any], request_id: str) -> tuple[dict[str, Any], str]:
        choices = payload.get("choices")
        usage = payload.get("usage")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise unusable_answer("has no choices", request_id)
        if not isinstance(usage, dict):
            raise unusable_answer("has no usage", request_id)
        choice = choices[0]
        message = json_object(choice, "message")
        content = message.get("content")
        finish_reason = choice.get("finish_reason")
        outputs = {
            "response": content if isinstance(content, str) else None,
            "prompt_tokens": int_or_none(usage.get("prompt_tokens")),
            "completion_tokens": int_or_none(usage.get("completion_tokens")),
            "total_tokens": int_or_none(usage.get("total_tokens")),
            "finish_reason": finish_reason if isinstance(finish_reason, str) else None,
        }
        text = (
            f"Chat completion finished ({outputs['finish_reason'] or 'no finish_reason'}); "
            f"{outputs['prompt_tokens']} prompt + {outputs['completion_tokens']} completion = "
            f"{outputs['total_tokens']} tokens (request id {request_id})."
        )
        note = FINISH_NOTES.get(str(finish_reason))
        return outputs, f"{text} {note}" if note else text


def _rejects_max_tokens(detail: ErrorDetail) -> bool:
    return detail.status == 400 and "max_tokens" in detail.message and "max_completion_tokens" in detail.message
