"""Chat request options of the items of a batch's ``requests``: reasoning effort and response
format (second-release §C) given per item, checked before any call. The job attributes' own
forms are read by ``chat_body`` and ``structured``, as the Chat Completion job reads them."""

from __future__ import annotations

import json
from typing import Any

from .chat_body import REASONING_EFFORTS
from .structured import SCHEMA_NAME


def reasoning_effort_problem(value: Any) -> str | None:
    """None when ``value`` is a reasoning effort Azure knows, else what is wrong with it."""
    if isinstance(value, str) and value in REASONING_EFFORTS:
        return None
    return f"is {json.dumps(value)[:80]}: use one of {', '.join(REASONING_EFFORTS)}"


def response_format(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(what to send as ``response_format``, or None for none; what is wrong, or None).

    ``value`` is ``"text"`` (nothing sent), ``"json_object"``, or a JSON Schema: an object, or
    an object's JSON text (the job attribute is text).
    """
    schema = value
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "text"):
            return None, None
        if text == "json_object":
            return {"type": "json_object"}, None
        try:
            schema = json.loads(text)
        except (ValueError, RecursionError):
            return None, "is neither 'text', 'json_object' nor a JSON Schema as JSON object text"
    if not isinstance(schema, dict):
        return None, "is neither 'text', 'json_object' nor a JSON Schema object"
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True}}, None


def wants_json(body: dict[str, Any]) -> bool:
    """Whether a chat request body asks for a JSON answer."""
    requested = body.get("response_format")
    return isinstance(requested, dict) and requested.get("type") in ("json_object", "json_schema")
