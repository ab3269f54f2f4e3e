"""Secrets scrubbed from every text a server sends back (spec second-release §A).

A misbehaving gateway or authority may echo what it was sent: the api-key header, the bearer
token, or the token request's form body with the client secret. It may echo it in an error
code, an inner code, XML, a Location header, a batch's ``errors.data``, or encoded. So every
text that came from a server is scrubbed of every secret the plugin holds for that platform, in
plain, base64 (both alphabets, at any byte alignment) and URL-encoded forms, before it reaches
a message, an exception, an output or a log record.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, quote_plus

import attrs

from .errors import ErrorDetail, PolysyncAzureOpenAIError, RemoteError

MASK: Final = "***"
#: Shorter values are not worth hiding and would mask ordinary words.
MIN_SECRET_LENGTH: Final = 8


def _base64_cores(secret: bytes) -> set[str]:
    """The base64 text that encodes ``secret`` wherever it starts inside a longer byte string.

    Base64 works on 3-byte groups, so a secret at offset 0, 1 or 2 of a group encodes to three
    different texts; only the characters that depend on the secret alone are kept.
    """
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + secret).decode()
        start = -(-offset * 8 // 6)  # ceil: the first character free of the padding bytes
        end = (offset + len(secret)) * 8 // 6  # floor: the last character free of what follows
        core = encoded[start:end]
        cores.add(core)
        cores.add(core.translate(str.maketrans("+/", "-_")))
    return cores


def variants(secret: str) -> set[str]:
    """Every form in which ``secret`` may come back."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    forms |= _base64_cores(secret.encode())
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Scrubbed(list[Any]):
    """A list whose every string its producer already passed through the platform's redactor.

    A batch's ``results`` is scrubbed row by row as it is built; walking it again would copy
    100,000 rows and search each string twice.
    """


@attrs.frozen
class Redactor:
    """Replaces each secret, in each of its forms, with ``***``."""

    pattern: re.Pattern[str] | None
    #: The length of the shortest form: a shorter text cannot hold one, and needs no search.
    shortest: int = MIN_SECRET_LENGTH

    @classmethod
    def of(cls, secrets: Iterable[str | None]) -> Redactor:
        return _redactor(tuple(secret for secret in secrets if secret and len(secret) >= MIN_SECRET_LENGTH))

    def __call__(self, text: str) -> str:
        return text if self.pattern is None else self.pattern.sub(MASK, text)

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)

    def detail(self, detail: ErrorDetail) -> ErrorDetail:
        if self.pattern is None:
            return detail
        return attrs.evolve(
            detail,
            code=self.optional(detail.code),
            message=self(detail.message),
            request_id=self.optional(detail.request_id),
            fix=self(detail.fix),
        )

    def value(self, value: Any) -> Any:
        """A run output: strings scrubbed, lists and objects walked (a :class:`Scrubbed` list is done)."""
        if self.pattern is None or isinstance(value, Scrubbed):
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, Mapping):
            return {key: self.value(item) for key, item in value.items()}
        return value

    def exception(self, exc: BaseException) -> None:
        """Scrub one of the plugin's exceptions in place (its detail and its message)."""
        if self.pattern is None or not isinstance(exc, PolysyncAzureOpenAIError):
            return
        if isinstance(exc, RemoteError):
            exc.replace_detail(self.detail(exc.detail))
        else:
            exc.args = tuple(self(a) if isinstance(a, str) else a for a in exc.args)


# Every answer is scrubbed, so a redactor is asked for on every call; building one (the base64
# forms of each secret, then a regular expression) cost more than the rest of a call's client
# work. The secrets it holds are held by the platform's configuration and token cache anyway;
# the bound drops the redactors of tokens long expired.
@functools.lru_cache(maxsize=256)
def _redactor(secrets: tuple[str, ...]) -> Redactor:
    forms: set[str] = set()
    for secret in secrets:
        forms |= variants(secret)
    if not forms:
        return Redactor(None)
    # Longest first, so a form that contains another is masked whole.
    ordered = sorted(forms, key=len, reverse=True)
    return Redactor(re.compile("|".join(re.escape(f) for f in ordered)), len(ordered[-1]))
