"""Every name and id pattern the plugin checks, in one place, and how a refused value is shown.

Each pattern is matched with ``fullmatch`` and compiled with ``re.ASCII``: Python's ``\\d`` and
``\\s`` would otherwise accept non-ASCII digits and spaces ("٢٠٢٤-١٠-٢١") that Azure refuses.
"""

from __future__ import annotations

import re
from typing import Final


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text, re.ASCII)


#: Azure OpenAI deployment names: letters, digits, '.', '_' and '-', 1 to 64, not only dots.
DEPLOYMENT_NAME: Final = _pattern(r"(?!\.+\Z)[A-Za-z0-9._-]{1,64}")
BATCH_ID: Final = _pattern(r"batch_[A-Za-z0-9_-]{1,128}")
FILE_ID: Final = _pattern(r"file-[A-Za-z0-9_-]{1,128}")
#: A batch completion window: hours, "24h" today.
COMPLETION_WINDOW: Final = _pattern(r"[1-9][0-9]{0,3}h")
GUID: Final = _pattern(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: Cognitive Services account names: 2 to 64 letters, digits and hyphens, no hyphen at either end.
RESOURCE_NAME: Final = _pattern(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}[A-Za-z0-9]")
#: Resource group names: 1 to 90 characters of these, not ending in a period.
RESOURCE_GROUP: Final = _pattern(r"[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]")
DOMAIN: Final = _pattern(r"(?=.{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
DATED_API_VERSION: Final = _pattern(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:-preview)?")
HOST_PORT: Final = _pattern(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?::[0-9]{1,5})?"
)
THUMBPRINT_NOISE: Final = _pattern(r"[\s:]")
HEX40: Final = _pattern(r"[0-9A-F]{40}")
#: A value sent in an HTTP header (an API key, a bearer token): printable ASCII, no spaces.
HEADER_VALUE: Final = _pattern(r"[\x21-\x7e]+")
#: Whole numbers as attributes are written: ASCII digits only, no sign, no '_' separators, and
#: short enough for int() (which refuses more than 4,300 digits with a raw ValueError).
WHOLE_NUMBER: Final = _pattern(r"[0-9]{1,18}")
POSITIVE_WHOLE_NUMBER: Final = _pattern(r"[1-9][0-9]{0,17}")
#: Plain decimals: no sign, exponent, '_' separators, 'nan' or 'inf'.
DECIMAL: Final = _pattern(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def shown(value: object, limit: int = 80) -> str:
    """A value quoted for an error message, cut to ``limit`` characters."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def json_type(value: object) -> str:
    """A value's JSON type with its article, for "is an object, not a string"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in ``text`` as U+XXXX (it cannot be encoded as UTF-8), else None."""
    for ch in text:
        if "\ud800" <= ch <= "\udfff":
            return f"U+{ord(ch):04X}"
    return None
