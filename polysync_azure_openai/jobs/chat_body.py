"""The body of a chat completion request (spec §2, second-release §C), checked before any call.

Reasoning models (o1, o3, o4, gpt-5 but not gpt-5-chat, per 'Model Name') get
``max_completion_tokens``, never ``temperature`` or ``top_p``, and may get ``reasoning_effort``;
Azure serves them on the v1 API or a dated version from 2024-12-01-preview on.
"""

from __future__ import annotations

from typing import Any, Final

from ..platform import PlatformConfig
from . import structured
from .base import JobInput, Prepared

#: Reasoning models refuse max_tokens and want max_completion_tokens (spec §2 Decision), and
#: refuse temperature (second-release §C). gpt-5-chat shares the prefix but is a chat model.
REASONING_PREFIXES: Final = ("o1", "o3", "o4", "gpt-5")
NOT_REASONING_PREFIXES: Final = ("gpt-5-chat",)
#: Azure answers a reasoning model on an older dated api-version with a 400 (second-release §B).
REASONING_MIN_API_VERSION: Final = "2024-12-01-preview"
REASONING_EFFORTS: Final = ("none", "minimal", "low", "medium", "high", "xhigh")
EFFORT_ATTRIBUTE: Final = "OpenAI Reasoning Effort"


def is_reasoning_model(model_name: str | None) -> bool:
    if not model_name:
        return False
    name = model_name.lower()
    return name.startswith(REASONING_PREFIXES) and not name.startswith(NOT_REASONING_PREFIXES)


def build(job_input: JobInput, config: PlatformConfig) -> Prepared:
    """The request of one chat run and what reading its answer needs."""
    user_prompt = job_input.required_text("user_prompt")
    system_prompt = job_input.text("system_prompt") or job_input.attribute("OpenAI System Prompt")
    max_tokens = job_input.positive_int("OpenAI Max Tokens")
    temperature = job_input.decimal("OpenAI Temperature", 0.0, 2.0)
    model_name = job_input.attribute("Model Name")
    reasoning = is_reasoning_model(model_name)
    effort = reasoning_effort(job_input, model_name, reasoning)
    if reasoning:
        check_reasoning(job_input, config, model_name, temperature)
    chosen = structured.response_format(job_input, config)
    if chosen is not None:
        structured.check_json_mentioned(job_input, chosen, [system_prompt or "", user_prompt])
    messages: list[dict[str, str]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": user_prompt})
    body: dict[str, Any] = {"messages": messages}
    if max_tokens is not None:
        body["max_completion_tokens" if reasoning else "max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    if effort is not None:
        body["reasoning_effort"] = effort
    if chosen is not None:
        body["response_format"] = chosen.wire
    return Prepared(body, json_format=chosen is not None, reasoning=reasoning)


def check_reasoning(job_input: JobInput, config: PlatformConfig, model_name: str | None, temperature: float | None) -> None:
    # Refused here rather than by Azure: its 400 would not say which setting to change.
    if config.surface.older_than(REASONING_MIN_API_VERSION):
        raise job_input.fail(
            f"model {model_name!r} (attribute 'Model Name')",
            "is a reasoning model, which Azure serves only on the v1 API or api-version "
            f"{REASONING_MIN_API_VERSION} and later, but the platform's 'OpenAI API Version' is {config.api_version!r}",
            f"Set the platform's 'OpenAI API Version' to v1 (or blank) or to {REASONING_MIN_API_VERSION} or later.",
        )
    if temperature is not None:
        raise job_input.fail(
            "attribute 'OpenAI Temperature'",
            f"is set, but {model_name!r} is a reasoning model, which refuses temperature",
            "Leave 'OpenAI Temperature' blank for this job.",
        )


def reasoning_effort(job_input: JobInput, model_name: str | None, reasoning: bool) -> str | None:
    """``OpenAI Reasoning Effort``, lower-cased; only for a reasoning model (or an unknown one)."""
    value = job_input.attribute(EFFORT_ATTRIBUTE)
    if value is None:
        return None
    effort = value.lower()
    if effort not in REASONING_EFFORTS:
        raise job_input.fail(
            f"attribute '{EFFORT_ATTRIBUTE}'",
            f"is {value[:40]!r}",
            f"Use one of {', '.join(REASONING_EFFORTS)} (which ones a model takes varies), or leave it blank.",
        )
    # Without 'Model Name' the plugin cannot tell, so Azure decides (as for max_tokens).
    if model_name and not reasoning:
        raise job_input.fail(
            f"attribute '{EFFORT_ATTRIBUTE}'",
            f"is set, but {model_name!r} (attribute 'Model Name') is not a reasoning model (o1, o3, o4, gpt-5)",
            f"Leave '{EFFORT_ATTRIBUTE}' blank for this job.",
        )
    return effort
