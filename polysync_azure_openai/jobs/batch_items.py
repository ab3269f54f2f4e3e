"""The items of the ``requests`` parameter (second-release §G) as batch input lines.

The job attributes are the defaults of every chat item; each item is checked as its line is
made, and an error names the item's index, what is wrong and the fix.
"""

from __future__ import annotations

import json
import math
import uuid
from json.encoder import encode_basestring
from typing import Any, Final

import attrs

from ..ids import json_type, shown
from ..platform import PlatformConfig
from . import chat_body, chat_options, structured
from .base import MAX_TEXT_CHARS, JobInput

MAX_CUSTOM_ID: Final = 64
CHAT_ITEM_KEYS: Final = frozenset(
    {"user_prompt", "system_prompt", "custom_id", "max_tokens", "temperature", "reasoning_effort", "response_format"}
)
BODY_ITEM_KEYS: Final = frozenset({"body", "custom_id"})
EMBEDDING_ITEM_KEYS: Final = frozenset({"input", "custom_id"})
#: What a reasoning model refuses in a request body (wire-samples §8).
REASONING_REFUSED: Final = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "logprobs", "logit_bias")
PARAMETER: Final = "parameter 'requests'"
#: How every batch line is written: compact, UTF-8 as is, no NaN (Azure's parser refuses it).
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
#: The bytes JSON escapes in a string when it writes UTF-8 as is: '"', '\\' and the controls
#: (in UTF-8 they never occur inside a multi-byte character).
_ESCAPED_BYTES: Final = bytes(range(0x20)) + b'"\\'
JSON_WORD_MISSING: Final = "asks for json_object, but no message mentions JSON, which Azure requires"
JSON_WORD_FIX: Final = "Say what JSON to answer with in 'OpenAI System Prompt' or the item's prompt."
LONE_SURROGATE: Final = "contains a lone surrogate, which is not text UTF-8 can carry"
SURROGATE_FIX: Final = "Fix the upstream output that made it."


def _as_json(value: Any) -> str:
    """A value from the caller's JSON, shown in JSON's notation (true, not True)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def default_custom_id(index: int) -> str:
    return f"row-{index}"


@attrs.frozen
class ChatDefaults:
    """The job attributes every chat item starts from (§G: they are defaults)."""

    system_prompt: str | None
    max_tokens: int | None
    temperature: float | None
    reasoning_effort: str | None
    response_format: dict[str, Any] | None
    #: True or False when ``Model Name`` tells; None when it is not set (Azure decides).
    reasoning: bool | None

    @classmethod
    def from_job(cls, job_input: JobInput, config: PlatformConfig) -> ChatDefaults:
        """The attributes, checked as the Chat Completion job checks them."""
        model_name = job_input.attribute("Model Name")
        reasoning = chat_body.is_reasoning_model(model_name) if model_name else None
        temperature = job_input.decimal("OpenAI Temperature", 0.0, 2.0)
        if reasoning:
            chat_body.check_reasoning(job_input, config, model_name, temperature)
        chosen = structured.response_format(job_input, config)
        return cls(
            system_prompt=job_input.attribute("OpenAI System Prompt"),
            max_tokens=job_input.positive_int("OpenAI Max Tokens"),
            temperature=temperature,
            reasoning_effort=chat_body.reasoning_effort(job_input, model_name, bool(reasoning)),
            response_format=chosen.wire if chosen is not None else None,
            reasoning=reasoning,
        )


class LineBuilder:
    """Items to batch input lines for one job: ``line(index, item)`` or a clear error."""

    def __init__(self, job_input: JobInput, config: PlatformConfig, deployment: str, url: str, endpoint: str) -> None:
        self.job_input = job_input
        self.config = config
        self.deployment = deployment
        self.url = url
        self.chat = endpoint == "/chat/completions"
        model_name = job_input.attribute("Model Name")
        if model_name and ("embedding" in model_name.lower()) == self.chat:
            # Every line would come back refused (OperationNotSupported): say so before any call.
            wanted = "a chat model" if self.chat else "an embedding model"
            raise job_input.fail(
                "attribute 'OpenAI Batch Endpoint'",
                f"is {endpoint!r}, which needs {wanted}, but 'Model Name' is {model_name!r}",
                "Set 'OpenAI Batch Endpoint' to match the deployment's model, or use another deployment.",
            )
        self.defaults = ChatDefaults.from_job(job_input, config) if self.chat else None
        self._template = self._plain_template()
        #: Whether a plain string item asks for a JSON answer (the job's response format).
        self.plain_wants_json = self.defaults is not None and self.defaults.response_format is not None
        # JSON mode needs "json" in some message: when the system prompt has none, each prompt must.
        self._plain_needs_json_word = bool(
            self.defaults is not None
            and _is_json_mode(self.defaults.response_format)
            and "json" not in (self.defaults.system_prompt or "").lower()
        )

    def _plain_template(self) -> tuple[bytes, bytes, bytes]:
        """A string item's line around its index and its text, taken from the general path once.

        Rows from an upstream task are mostly plain strings; writing them from this template
        costs one escape of the text instead of an encoder walk over a dict per line, and
        gives the very bytes the general path gives (a test compares them).

        The probe must be no other string of the line (a system prompt or a schema value may be
        any text, a fixed probe too): a random one cannot be written in advance, and one that
        occurs twice anyway is drawn again. The custom_id is the line's first key, so its
        sentinel's first occurrence is its place.
        """
        while True:
            probe = f"\ue000{uuid.uuid4().hex}\ue001"
            line = self._line(0, probe)[1]
            line["custom_id"] = "\ue000id\ue001"
            text = _ENCODER.encode(line)
            head, rest = text.split(_ENCODER.encode(line["custom_id"]), 1)
            parts = rest.split(_ENCODER.encode(probe))
            if len(parts) == 2:
                middle, tail = parts
                return (head + '"row-').encode(), ('"' + middle + '"').encode(), ('"' + tail + "\n").encode()

    def plain_line(self, index: int, text: str) -> bytes:
        """A string item's line: the template filled, with the general path's checks."""
        # Not text.strip(): that copies each prompt to learn what isspace() says without one.
        if not text or text.isspace():
            key = "user_prompt" if self.chat else "input"
            raise self.fail(index, f"has an empty '{key}'", f"Give '{key}' as non-empty text, or drop the item.")
        if len(text) > MAX_TEXT_CHARS:
            raise self.fail(index, f"is {len(text):,} characters, more than {MAX_TEXT_CHARS:,}", "Shorten it.")
        if self._plain_needs_json_word and "json" not in text.lower():
            raise self.fail(index, JSON_WORD_MISSING, JSON_WORD_FIX)
        try:
            raw = text.encode()
        except UnicodeEncodeError:
            raise self.fail(index, LONE_SURROGATE, SURROGATE_FIX) from None
        # Most prompts need no escape at all, and finding that out in bytes is several times
        # cheaper than the encoder's walk; the rest take the encoder's very escapes.
        if len(raw.translate(None, _ESCAPED_BYTES)) != len(raw):
            raw = encode_basestring(text)[1:-1].encode()
        head, middle, tail = self._template
        return b"".join((head, str(index).encode(), middle, raw, tail))

    def fail(self, index: int, problem: str, fix: str) -> Exception:
        return self.job_input.fail(f"{PARAMETER} item {index}", problem, fix)

    def line(self, index: int, item: Any) -> tuple[str | None, dict[str, Any]]:
        """(the item's own custom_id or None, the JSON line), checked as Azure would check it."""
        custom_id, line = self._line(index, item)
        body = line["body"]
        if _is_json_mode(body.get("response_format")):
            messages = body.get("messages") or []
            if not any("json" in str(m.get("content") or "").lower() for m in messages if isinstance(m, dict)):
                raise self.fail(index, JSON_WORD_MISSING, JSON_WORD_FIX)
        return custom_id, line

    def _line(self, index: int, item: Any) -> tuple[str | None, dict[str, Any]]:
        custom_id: str | None = None
        if isinstance(item, dict):
            custom_id = self._custom_id(index, item.get("custom_id")) if "custom_id" in item else None
        body = self._chat_body(index, item) if self.chat else self._embedding_body(index, item)
        body["model"] = self.deployment
        return custom_id, {
            "custom_id": custom_id or default_custom_id(index),
            "method": "POST",
            "url": self.url,
            "body": body,
        }

    def _custom_id(self, index: int, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(index, f"has a custom_id that is {json_type(value)}, not a string", "Give a text custom_id.")
        if not value:
            raise self.fail(
                index, "has an empty custom_id", f"Give a non-empty one, or leave it out for {default_custom_id(index)!r}."
            )
        if len(value) > MAX_CUSTOM_ID:
            raise self.fail(
                index,
                f"has a custom_id of {len(value)} characters, more than Azure's {MAX_CUSTOM_ID}",
                "Shorten it, or leave it out for the default row-{index}.",
            )
        return value

    def _text(self, index: int, item: dict[str, Any], key: str, *, required: bool) -> str | None:
        value = item.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            problem = f"has no '{key}'" if value is None else f"has a '{key}' that is {json_type(value)}, not a string"
            raise self.fail(index, problem, f"Give '{key}' as non-empty text.")
        if required and not value.strip():
            raise self.fail(index, f"has an empty '{key}'", f"Give '{key}' as non-empty text, or drop the item.")
        if len(value) > MAX_TEXT_CHARS:
            raise self.fail(index, f"has a '{key}' of {len(value):,} characters, more than {MAX_TEXT_CHARS:,}", "Shorten it.")
        return value

    def _unknown_keys(self, index: int, item: dict[str, Any], allowed: frozenset[str], form: str) -> None:
        unknown = sorted(str(key) for key in item if key not in allowed)
        if unknown:
            raise self.fail(
                index,
                f"has {', '.join(shown(key, 40) for key in unknown)}, which {form} items do not take",
                f"Use only {', '.join(sorted(allowed))}.",
            )

    def _chat_body(self, index: int, item: Any) -> dict[str, Any]:
        assert self.defaults is not None
        if isinstance(item, str):
            item = {"user_prompt": item}
        if not isinstance(item, dict):
            raise self.fail(
                index,
                f"is {json_type(item)}",
                "Give the user prompt as a string, or an object with 'user_prompt' (or a complete 'body').",
            )
        if "body" in item:
            self._unknown_keys(index, item, BODY_ITEM_KEYS, "'body'")
            return self._given_body(index, item["body"])
        if "user_prompt" not in item:
            raise self.fail(index, "has neither 'user_prompt' nor 'body'", "Give the user prompt as 'user_prompt'.")
        self._unknown_keys(index, item, CHAT_ITEM_KEYS, "'user_prompt'")
        defaults = self.defaults
        user_prompt = str(self._text(index, item, "user_prompt", required=True))
        system_prompt = defaults.system_prompt
        if "system_prompt" in item:
            system_prompt = self._text(index, item, "system_prompt", required=False)
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": user_prompt})
        body: dict[str, Any] = {"messages": messages}
        max_tokens = self._max_tokens(index, item["max_tokens"]) if "max_tokens" in item else defaults.max_tokens
        if max_tokens is not None:
            body["max_completion_tokens" if defaults.reasoning else "max_tokens"] = max_tokens
        temperature = self._temperature(index, item["temperature"]) if "temperature" in item else defaults.temperature
        if temperature is not None:
            body["temperature"] = temperature
        effort = self._effort(index, item["reasoning_effort"]) if "reasoning_effort" in item else defaults.reasoning_effort
        if effort is not None:
            body["reasoning_effort"] = effort
        if "response_format" in item:
            response_format, problem = chat_options.response_format(item["response_format"])
            if problem is not None:
                raise self.fail(index, f"has a response_format that {problem}", "Use text, json_object or a JSON Schema object.")
            if (
                response_format is not None
                and response_format["type"] == "json_schema"
                and self.config.surface.older_than(structured.JSON_SCHEMA_MIN_API_VERSION)
            ):
                raise self.fail(
                    index,
                    "asks for structured output (a JSON Schema), which Azure serves only on api-version "
                    f"{structured.JSON_SCHEMA_MIN_API_VERSION} and later, not on {self.config.api_version!r}",
                    "Set the platform's 'OpenAI API Version' to v1 (or blank), or use json_object.",
                )
        else:
            response_format = defaults.response_format
        if response_format is not None:
            body["response_format"] = response_format
        return body

    def _max_tokens(self, index: int, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000_000:
            raise self.fail(index, f"has max_tokens {_as_json(value)}", "Use a whole number from 1 to 10000000.")
        return value

    def _temperature(self, index: int, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 2:
            raise self.fail(index, f"has temperature {_as_json(value)}", "Use a number from 0 to 2.")
        if self.defaults is not None and self.defaults.reasoning:
            raise self.fail(index, "has a temperature, which a reasoning model refuses", "Leave temperature out.")
        return value

    def _effort(self, index: int, value: Any) -> str:
        problem = chat_options.reasoning_effort_problem(value)
        if problem is not None:
            raise self.fail(index, f"has a reasoning_effort that {problem}", "Or leave it out.")
        if self.defaults is not None and self.defaults.reasoning is False:
            raise self.fail(index, "has a reasoning_effort, which only reasoning models take", "Leave it out.")
        return str(value)

    def _given_body(self, index: int, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise self.fail(index, f"has a 'body' that is {json_type(body)}, not an object", "Give the complete request body.")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise self.fail(index, "has a 'body' without a non-empty list of message objects", "Set body.messages.")
        if body.get("stream") not in (None, False):
            raise self.fail(index, "has a 'body' that asks to stream, which batches cannot", "Leave body.stream out.")
        if self.defaults is not None and self.defaults.reasoning:
            refused = [key for key in ("max_tokens", *REASONING_REFUSED) if key in body]
            if refused:
                raise self.fail(
                    index,
                    f"has body.{refused[0]}, which a reasoning model refuses",
                    "Use max_completion_tokens instead of max_tokens, and leave sampling settings out.",
                )
        return dict(body)

    def _embedding_body(self, index: int, item: Any) -> dict[str, Any]:
        if isinstance(item, str):
            item = {"input": item}
        if not isinstance(item, dict):
            raise self.fail(index, f"is {json_type(item)}", "Give the text to embed as a string, or an object with 'input'.")
        self._unknown_keys(index, item, EMBEDDING_ITEM_KEYS, "embeddings")
        return {"input": self._text(index, item, "input", required=True)}


def encode(builder: LineBuilder, index: int, line: dict[str, Any]) -> bytes:
    try:
        return _ENCODER.encode(line).encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        raise builder.fail(index, LONE_SURROGATE, SURROGATE_FIX) from None
    except ValueError:
        raise builder.fail(index, "contains NaN or Infinity, which JSON cannot carry", "Use finite numbers.") from None
    except RecursionError:
        raise builder.fail(index, "nests too deeply to write as JSON", "Flatten the request.") from None


def _is_json_mode(response_format: Any) -> bool:
    return isinstance(response_format, dict) and response_format.get("type") == "json_object"
