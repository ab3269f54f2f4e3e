"""Reading a host platform's attribute values, with errors worded one way (spec §6)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError
from .ids import shown


def attributes_of(platform: Any) -> dict[str, str]:
    """The platform's attribute values: missing, None and blank all mean "not set"."""
    raw = getattr(platform, "attributes", None) or {}
    values: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            continue
        text = str(value).strip()
        if text:
            values[str(name)] = text
    return values


class AttributeReader:
    """Reads one platform's attributes and words its errors consistently."""

    def __init__(self, platform_name: str, attributes: Mapping[str, str]) -> None:
        self.platform_name = platform_name
        self.attributes = attributes

    def fail(self, attribute: str, problem: str, fix: str) -> ConfigurationError:
        return ConfigurationError(f"Platform '{self.platform_name}': attribute '{attribute}' {problem}. {fix}")

    def get(self, attribute: str) -> str | None:
        return self.attributes.get(attribute)

    def required(self, attribute: str, why: str) -> str:
        value = self.attributes.get(attribute)
        if value is None:
            raise self.fail(attribute, "is not set", f"Set it in the platform's settings ({why}).")
        return value

    def matching(self, attribute: str, value: str | None, pattern: re.Pattern[str], rule: str) -> str | None:
        if value is None:
            return None
        if not pattern.fullmatch(value):
            raise self.fail(attribute, f"is {shown(value)}: {rule}", "Correct it in the platform's settings.")
        return value
