"""What Azure's answers say: error bodies in all their shapes (spec §6), request ids, retry headers."""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs
import requests

from ..errors import ErrorDetail, TransportError
from ..redaction import Redactor
from .classify import short

ERROR_TEXT_LIMIT: Final = 500
REQUEST_ID_HEADERS: Final = ("apim-request-id", "x-request-id", "x-ms-request-id")


def request_id(headers: Mapping[str, str], client_request_id: str) -> str:
    """The id Azure's support asks for: the service's own when it sent one, else ours."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return client_request_id


def response_request_id(response: requests.Response) -> str:
    sent = response.request.headers.get("x-ms-client-request-id", "") if response.request else ""
    return request_id(response.headers, sent)


def sent_secrets(request: requests.PreparedRequest | None) -> tuple[str, ...]:
    """Values an error body must never echo back: the key or token this request carried."""
    sent = request.headers if request is not None else {}
    values = [sent.get("api-key") or "", (sent.get("Authorization") or "").removeprefix("Bearer ")]
    return tuple(v for v in values if v)


def error_body(response: requests.Response) -> bytes:
    try:
        return response.content[: 64 * 1024]
    except requests.RequestException:
        return b""


def error_detail(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    client_request_id: str,
    attempts: int = 1,
    secrets: tuple[str, ...] = (),
) -> ErrorDetail:
    """Status, code, message and request id from any of Azure's error shapes (spec §6)."""
    code: str | None = None
    message: str | None = None
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            code = _text(error.get("code"))
            message = _text(error.get("message"))
            inner = error.get("innererror") or error.get("inner_error")
            if isinstance(inner, dict):
                filtered = _filtered_categories(inner)
                if filtered:
                    message = f"{message or ''} [content filter: {filtered}]".strip()
                inner_code = _text(inner.get("code"))
                if inner_code and inner_code != code:
                    code = f"{code}/{inner_code}" if code else inner_code
        elif isinstance(error, str):  # OAuth / Entra envelope
            code = error
            message = _text(payload.get("error_description"))
        elif "message" in payload or "Message" in payload:  # {"statusCode": 401, "message": ...}
            message = _text(payload.get("message") or payload.get("Message"))
            code = _text(payload.get("code") or payload.get("Code"))
    if message is None:
        text = body.decode("utf-8", "replace").strip()
        xml_code = re.search(r"<Code>([^<]{1,100})</Code>", text)
        if xml_code and code is None:
            code = xml_code.group(1)
        content_type = headers.get("Content-Type", "") or "no content type"
        message = f"non-JSON error body ({content_type}): {text[:ERROR_TEXT_LIMIT]}" if text else "empty error body"
    # Every text here came from the server: scrub it whole, not just the message (spec §A).
    return Redactor.of(secrets).detail(ErrorDetail(status, code, message, request_id(headers, client_request_id), attempts))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def _filtered_categories(inner: Mapping[str, Any]) -> str:
    results = inner.get("content_filter_result") or inner.get("content_filter_results")
    if not isinstance(results, dict):
        return ""
    hits = []
    for category, verdict in results.items():
        if isinstance(verdict, dict) and verdict.get("filtered"):
            severity = verdict.get("severity")
            hits.append(f"{category}={severity}" if severity else category)
    return ", ".join(hits)


def read_json(response: requests.Response, what: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer, or a TransportError saying what was wrong with it."""
    rid = response_request_id(response)
    redact = Redactor.of(sent_secrets(response.request))
    content_type = response.headers.get("Content-Type", "")
    try:
        body = response.content
    except requests.RequestException as exc:
        raise TransportError(
            ErrorDetail(response.status_code, "BrokenResponse", f"{what}: the body was cut short ({short(exc)})", rid),
            transient=True,
        ) from None
    if "json" not in content_type.lower():
        snippet = body[:200].decode("utf-8", "replace")
        raise TransportError(
            ErrorDetail(
                response.status_code,
                "UnexpectedContentType",
                redact(f"{what}: expected JSON but got {content_type or 'no content type'}: {snippet!r}"),
                rid,
            )
        )
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise TransportError(
            ErrorDetail(response.status_code, "MalformedJSON", f"{what}: the body is not valid JSON ({exc})", rid)
        ) from None
    if not isinstance(payload, dict):
        raise TransportError(
            ErrorDetail(
                response.status_code, "MalformedJSON", f"{what}: expected a JSON object, got {type(payload).__name__}", rid
            )
        )
    return payload


#: Headers that say when to come back, in the order they are believed: Azure's millisecond
#: headers, Retry-After, then OpenAI's reset durations (sent when neither came; wire-samples §5).
WAIT_HEADERS: Final = ("retry-after-ms", "x-ms-retry-after-ms", "retry-after")
RESET_HEADERS: Final = ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "x-rate-limit-reset-tokens")
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?")
_SHOWN_HEADER_CHARS: Final = 40


@attrs.frozen
class RetryHint:
    """What an answer said about waiting: the usable wait, and the headers as Azure sent them."""

    #: Seconds to wait, or None when no header named a usable one (absent, negative, text).
    seconds: float | None
    #: Every wait header as sent, quoted and shortened (``retry-after-ms: '5500', retry-after: '6'``).
    sent: str = ""
    #: Whether the wait names the reset to the millisecond (``retry-after-ms``, a reset duration).
    exact: bool = False


def retry_hint(headers: Mapping[str, str], secrets: tuple[str, ...] = ()) -> RetryHint:
    """The wait Azure asks for: retry-after-ms, x-ms-retry-after-ms, Retry-After (seconds or a date),
    else the longest x-ratelimit-reset-* duration. Malformed values are shown, never waited for."""
    shown = [
        f"{name}: {value[:_SHOWN_HEADER_CHARS]!r}"
        for name in (*WAIT_HEADERS, *RESET_HEADERS)
        if (value := headers.get(name)) is not None
    ]
    sent = Redactor.of(secrets)(", ".join(shown))
    for name in WAIT_HEADERS:
        value = headers.get(name)
        seconds = None if value is None else _wait_seconds(value.strip(), 1.0 if name == "retry-after" else 0.001)
        if seconds is not None:
            return RetryHint(seconds, sent, exact=name != "retry-after")
    resets = [(s, value) for name in RESET_HEADERS if (s := _duration_seconds(value := headers.get(name) or "")) is not None]
    if not resets:
        return RetryHint(None, sent)
    seconds, text = max(resets)
    # Whole seconds (Azure's `55`) name the reset only to the second.
    return RetryHint(seconds, sent, exact="ms" in text or "." in text)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait as Azure asks (see :func:`retry_hint`), or None."""
    return retry_hint(headers).seconds


def _wait_seconds(value: str, scale: float) -> float | None:
    try:
        seconds = float(value) * scale
    except ValueError:
        if scale != 1.0:
            return None
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        # A date already past means "now".
        seconds = max(0.0, (when - datetime.now(UTC)).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _duration_seconds(value: str) -> float | None:
    """``55`` (seconds, as Azure sends it), or OpenAI's ``1h2m3.5s``, ``6m0s``, ``850ms``."""
    if not value.strip():
        return None
    value = value.strip()
    plain = _wait_seconds(value, 1.0) if value[0].isdigit() and value[-1].isdigit() else None
    if plain is not None:
        return plain
    match = _DURATION.fullmatch(value)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds, milliseconds = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + milliseconds / 1000
