"""Structured output: `response_format` checked as Azure checks it, and JSON answers that fit it.

`json_object` (JSON mode) needs the word "json" somewhere in the messages. `json_schema` needs
`2024-08-01-preview` or later (or the v1 API), a name and a schema; with `"strict": true` the
schema must be in the strict subset: a root of type object, and every object with
`additionalProperties: false` and every property listed in `required`. Answers are derived from
the schema alone (enums take their first value, strings a phrase), so tests can predict them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

RESPONSE_FORMATS = ("text", "json_object", "json_schema")
JSON_SCHEMA_MIN_API_VERSION = "2024-08-01-preview"
# Nesting a generated answer follows; deeper schemas get null there (Azure caps nesting at 10).
_MAX_DEPTH = 10


class FormatError(Exception):
    """A refused `response_format`: OpenAI's message and param, and whether it is the gateway's BadRequest."""

    def __init__(self, message: str, param: str | None, code: str | None = None, *, gateway: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.gateway = gateway


def check_response_format(
    body: dict[str, Any], messages: list[dict[str, str]], version_ok: Callable[[str], bool]
) -> dict[str, Any] | None:
    """The `response_format` a valid request asks for (None: plain text); raise FormatError otherwise.

    `version_ok(minimum)` says whether the request's api-version is `minimum` or later.
    """
    value = body.get("response_format")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FormatError(
            f"Invalid type for 'response_format': expected an object, but got {_a_type(value)} instead.",
            "response_format",
            "invalid_type",
        )
    kind = value.get("type")
    if kind is None:
        raise FormatError(
            "Missing required parameter: 'response_format.type'.", "response_format.type", "missing_required_parameter"
        )
    if kind not in RESPONSE_FORMATS:
        raise FormatError(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and 'json_schema'.",
            "response_format.type",
            "invalid_value",
        )
    if kind == "text":
        return None
    if kind == "json_object":
        if not any("json" in message["content"].lower() for message in messages):
            raise FormatError(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                "messages",
            )
        return value
    if not version_ok(JSON_SCHEMA_MIN_API_VERSION):
        raise FormatError(
            f"response_format value as json_schema is enabled only for api versions {JSON_SCHEMA_MIN_API_VERSION} and later",
            None,
            gateway=True,
        )
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise FormatError(
            "Missing required parameter: 'response_format.json_schema'.",
            "response_format.json_schema",
            "missing_required_parameter",
        )
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise FormatError(
            "Missing required parameter: 'response_format.json_schema.name'.",
            "response_format.json_schema.name",
            "missing_required_parameter",
        )
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise FormatError(
            f"Invalid type for 'response_format.json_schema.schema': expected an object, but got {_a_type(schema)} instead.",
            "response_format.json_schema.schema",
            "invalid_type",
        )
    if spec.get("strict") is True:
        _check_strict(name, schema or {})
    return value


def _check_strict(name: str, schema: dict[str, Any]) -> None:
    """The strict subset's rules, worded as OpenAI words them."""
    if schema.get("type") != "object":
        raise FormatError(
            f"Invalid schema for response_format '{name}': schema must be a JSON Schema of 'type: \"object\"', "
            f"got 'type: \"{schema.get('type')}\"'.",
            "response_format",
        )
    for context, node in _subschemas(schema, ()):
        if node.get("type") != "object" and "properties" not in node:
            continue
        where = f"In context=({', '.join(repr(part) for part in context)}{',' if len(context) == 1 else ''})"
        if node.get("additionalProperties") is not False:
            raise FormatError(
                f"Invalid schema for response_format '{name}': {where}, 'additionalProperties' is required to be "
                "supplied and to be false.",
                "response_format",
            )
        properties = node.get("properties") or {}
        required = node.get("required")
        missing = [key for key in properties if not isinstance(required, list) or key not in required]
        if missing:
            raise FormatError(
                f"Invalid schema for response_format '{name}': {where}, 'required' is required to be supplied and to "
                f"be an array including every key in properties. Missing '{missing[0]}'.",
                "response_format",
            )


def _subschemas(node: Any, context: tuple[str, ...]) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every schema object inside `node` with the path to it, `node` first."""
    if not isinstance(node, dict):
        return []
    found = [(context, node)]
    for key in ("properties", "$defs", "definitions"):
        children = node.get(key)
        if isinstance(children, dict):
            for child_name, child in children.items():
                found += _subschemas(child, (*context, key, child_name))
    items = node.get("items")
    if isinstance(items, dict):
        found += _subschemas(items, (*context, "items"))
    for key in ("anyOf", "oneOf", "allOf"):
        options = node.get(key)
        if isinstance(options, list):
            for index, option in enumerate(options):
                found += _subschemas(option, (*context, key, str(index)))
    return found


def json_answer(response_format: dict[str, Any], phrase: str) -> str:
    """The answer's text for a JSON format: an object that fits the schema (or JSON mode's own)."""
    if response_format["type"] == "json_object":
        return json.dumps({"answer": phrase})
    schema = response_format["json_schema"].get("schema") or {}
    return json.dumps(_instance(schema, schema, phrase, 0))


def _instance(node: Any, root: dict[str, Any], phrase: str, depth: int, name: str | None = None) -> Any:
    """A value of `node`'s type: every required property, the first of an enum or of anyOf.

    A string property `name` is "emulated {name}", so an answer reads like one; others get `phrase`.
    """
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return None
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/"):
        target: Any = root
        for part in reference[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return _instance(target, root, phrase, depth + 1, name)
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and options:
            return _instance(options[0], root, phrase, depth + 1, name)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in node):
        properties = node.get("properties") or {}
        listed = node.get("required")
        required: list[Any] = listed if isinstance(listed, list) else list(properties)
        return {key: _instance(properties.get(key, {}), root, phrase, depth + 1, key) for key in required if key in properties}
    if kind == "array":
        return [_instance(node.get("items", {}), root, phrase, depth + 1, name)]
    if kind == "integer":
        return 7
    if kind == "number":
        return 7.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"emulated {name}" if name else phrase


def _a_type(value: object) -> str:
    """A JSON value's type with its article, in OpenAI's words ("an integer", "a decimal")."""
    if value is None:
        return "null"
    kind = (
        "boolean"
        if isinstance(value, bool)
        else "integer"
        if isinstance(value, int)
        else "decimal"
        if isinstance(value, float)
        else "string"
        if isinstance(value, str)
        else "array"
        if isinstance(value, list)
        else "object"
    )
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
