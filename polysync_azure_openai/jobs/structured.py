"""Structured output for Chat Completion (second-release §C): the format a run asks for, and its answer.

``OpenAI Response Format`` is blank or ``text`` (nothing sent), ``json_object`` (JSON mode) or a
JSON Schema written as JSON object text; the run's ``response_schema`` parameter (a JSON value)
overrides it. A schema is sent as Azure's strict structured output under the name ``result``.
"""

from __future__ import annotations

import json
from typing import Any, Final

import attrs

from ..ids import json_type, shown
from ..platform import PlatformConfig
from .base import JobInput

ATTRIBUTE: Final = "OpenAI Response Format"
PARAMETER: Final = "response_schema"
SCHEMA_NAME: Final = "result"
#: A schema larger than this is refused before any call (its JSON text, UTF-8).
MAX_SCHEMA_BYTES: Final = 100 * 1024
#: Azure serves json_schema from this dated api-version on (and on v1); JSON mode is older.
JSON_SCHEMA_MIN_API_VERSION: Final = "2024-08-01-preview"
_FORMS: Final = 'text, json_object, or a JSON Schema written as a JSON object such as {"type": "object", ...}'


@attrs.frozen
class ResponseFormat:
    """The ``response_format`` to send and where it came from (for messages)."""

    wire: dict[str, Any]
    source: str

    @property
    def is_json_object(self) -> bool:
        return bool(self.wire["type"] == "json_object")


def response_format(job_input: JobInput, config: PlatformConfig) -> ResponseFormat | None:
    """The run's JSON format, or None for plain text; every problem refused before any call."""
    value = job_input.parameters.get(PARAMETER)
    if value is not None and value != "":
        source = f"parameter '{PARAMETER}'"
        schema = value if isinstance(value, dict) else _parse(job_input, source, value)
    else:
        source = f"attribute '{ATTRIBUTE}'"
        text = job_input.attribute(ATTRIBUTE)
        if text is None or text.lower() == "text":
            return None
        if text.lower() == "json_object":
            return ResponseFormat({"type": "json_object"}, source)
        schema = _parse(job_input, source, text)
    size = len(json.dumps(schema, ensure_ascii=False).encode("utf-8"))
    if size > MAX_SCHEMA_BYTES:
        raise job_input.fail(
            source,
            f"is a schema of {size:,} bytes, more than the {MAX_SCHEMA_BYTES:,} allowed",
            "Shorten the schema (share repeated parts through $defs), or leave it blank for a text answer.",
        )
    if config.surface.older_than(JSON_SCHEMA_MIN_API_VERSION):
        raise job_input.fail(
            source,
            "asks for structured output (a JSON Schema), which Azure serves only on api-version "
            f"{JSON_SCHEMA_MIN_API_VERSION} and later, but the platform's 'OpenAI API Version' is {config.api_version!r}",
            f"Set the platform's 'OpenAI API Version' to v1 (or blank) or to {JSON_SCHEMA_MIN_API_VERSION} or later, "
            "or use json_object.",
        )
    wire = {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True}}
    return ResponseFormat(wire, source)


def check_json_mentioned(job_input: JobInput, chosen: ResponseFormat, prompts: list[str]) -> None:
    """JSON mode: Azure refuses messages that never mention JSON (it would answer whitespace forever)."""
    if chosen.is_json_object and not any("json" in prompt.lower() for prompt in prompts):
        raise job_input.fail(
            chosen.source,
            "is json_object, but neither the system prompt nor the user prompt mentions JSON, which Azure requires",
            "Say in 'OpenAI System Prompt' what JSON to answer with (for example: Answer in JSON with the keys ...).",
        )


def _parse(job_input: JobInput, source: str, value: Any) -> dict[str, Any]:
    """A schema from JSON object text; anything else is refused, naming what it is."""
    if not isinstance(value, str):
        raise job_input.fail(source, f"is {json_type(value)}", f"Give {_FORMS}.")
    job_input.check_encodable(source, value)
    if len(value.encode("utf-8")) > MAX_SCHEMA_BYTES:
        raise job_input.fail(
            source,
            f"has {len(value.encode('utf-8')):,} bytes, more than the {MAX_SCHEMA_BYTES:,} a schema may have",
            "Shorten the schema (share repeated parts through $defs), or leave it blank for a text answer.",
        )
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise job_input.fail(source, f"is {shown(value)}, which is not JSON object text", f"Give {_FORMS}.")
    return parsed
