"""Faults a test injects into the emulator: what Azure, its gateways and the network do on bad days.

A fault is armed with :meth:`Emulator.inject` for the next requests matching a request `kind`,
a path regex and/or a method; when one arrives, the fault takes over its exchange (server.py)
before normal routing, and the request log records the fault's name. Faults that answer in
place of the service (a status, a redirect) never run its handler; faults that spoil an answer
(a delay, a truncated body, a lost response) run it first, so its effects happen, as when Azure
did the work and only the answer went wrong.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any, Literal

import attrs

from .dataplane import prompt_blocked
from .ratelimit import OPERATIONS, THROTTLE_SHAPES, ThrottleShape, shaped_headers, throttle_message
from .server import Exchange, Fault, Response

JSON = {"Content-Type": "application/json"}
# Bodies Azure's front ends were seen to send (wire-samples §5); others get a generic one.
_DEFAULT_BODIES: dict[int, Any] = {
    401: {
        "statusCode": 401,
        "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
        "(https://cognitiveservices.azure.com), or have expired.",
    },
    500: {
        "error": {
            "code": "InternalServerError",
            "message": "Backend returned unexpected response. Please contact Microsoft for help.",
        }
    },
    502: {"error": {"code": "BadGateway", "message": "Bad gateway: the backend did not answer in time."}},
    503: {
        "error": {
            "code": "ServiceUnavailable",
            "message": "The service is temporarily unable to process your request. Please try again later.",
        }
    },
    504: {"error": {"code": "Timeout", "message": "The operation was timeout."}},
}
HTML_ERROR_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>{status} {phrase}</title></head>\n"
    "<body><h1>{status} {phrase}</h1><p>The gateway could not reach the service. Please try again later.</p>"
    "<hr><center>Microsoft-Azure-Application-Gateway/v2</center></body></html>\n"
)
MALFORMED_JSON = b'{"id": "chatcmpl-emulator", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": '


def _names(fields: Iterable[str]) -> tuple[str, ...]:
    # A lone string would otherwise become a tuple of its letters.
    return (fields,) if isinstance(fields, str) else tuple(fields)


def _as_body(body: bytes | str | dict[str, Any] | list[Any]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


@attrs.frozen
class Status:
    """Answer `code` with `body` (default: the body Azure sends for that status) and `headers`.

    With `handled`, the service handles the request first (a 504 after the batch was created).
    """

    code: int
    body: bytes | str | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    handled: bool = False

    @property
    def name(self) -> str:
        return f"status {self.code}"

    def apply(self, exchange: Exchange) -> None:
        if self.handled:
            exchange.respond()
        body = self.body
        if body is None:
            phrase = HTTPStatus(self.code).phrase if self.code in HTTPStatus._value2member_map_ else "Error"
            body = _DEFAULT_BODIES.get(self.code, {"error": {"code": str(self.code), "message": phrase}})
        exchange.send(Response(self.code, _as_body(body), {**JSON, **self.headers}))


@attrs.frozen
class Throttled:
    """Azure's 429, its message naming the operation and the api-version of the request it answers.

    `headers` are the retry headers; `limit` is `token` or `call` (which quota ran out). The
    request is not handled: a throttled request never reaches the model.
    """

    seconds: int
    headers: dict[str, str] = attrs.field(factory=dict)
    limit: str = "token"

    @property
    def name(self) -> str:
        return "status 429"

    def apply(self, exchange: Exchange) -> None:
        exhausted = "x-ratelimit-remaining-tokens" if self.limit == "token" else "x-ratelimit-remaining-requests"
        if exchange.kind.startswith("arm."):
            # ARM throttles per subscription, in its own words and envelope.
            body: dict[str, Any] = {
                "error": {
                    "code": "SubscriptionRequestsThrottled",
                    "message": "Number of 'read' requests for subscription exceeded. Please try again after "
                    f"'{self.seconds}' seconds after additional tokens are available.",
                }
            }
            headers = dict(self.headers)
        else:
            operation = OPERATIONS.get(exchange.kind, "ChatCompletions_Create")
            api_version = exchange.query.get("api-version") or "2024-10-21"
            message = throttle_message(self.seconds, operation, api_version, self.limit)
            body = {"error": {"code": "429", "message": message}}
            headers = {exhausted: "0", **self.headers}
        exchange.send(Response(429, _as_body(body), {**JSON, **headers}))


def throttled(
    retry_after: int | str | datetime | None = None,
    *,
    retry_after_ms: int | None = None,
    x_ms_retry_after_ms: int | None = None,
    shape: ThrottleShape | None = None,
    limit: Literal["token", "call"] = "token",
) -> Throttled:
    """Azure's 429.

    Without `shape`, exactly the retry headers given: `Retry-After` in seconds or as an HTTP date,
    `retry-after-ms`, `x-ms-retry-after-ms`. With `shape`, one of Azure's three forms for a wait
    of `retry_after` seconds (or `retry_after_ms`; default 1 s): ``"retry-after-ms"`` sends
    `retry-after-ms` and `retry-after` (whole seconds, rounded up), ``"retry-after"`` only
    `retry-after`, ``"none"`` neither but `x-ratelimit-reset-requests` and `-tokens`.
    """
    if shape is not None and shape not in THROTTLE_SHAPES:
        raise ValueError(f"shape must be one of {', '.join(THROTTLE_SHAPES)} or None, not {shape!r}")
    if limit not in ("token", "call"):
        raise ValueError(f"limit must be 'token' or 'call', not {limit!r}")
    if shape is not None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, (int, type(None))):
            raise ValueError("with a shape, retry_after is a whole number of seconds")
        milliseconds = retry_after_ms if retry_after_ms is not None else 1000 * (1 if retry_after is None else retry_after)
        seconds = math.ceil(milliseconds / 1000) if retry_after is None else retry_after
        return Throttled(seconds, shaped_headers(shape, milliseconds / 1000), limit)
    headers: dict[str, str] = {}
    if retry_after is not None:
        if isinstance(retry_after, datetime):
            headers["Retry-After"] = format_datetime(retry_after, usegmt=True)
        else:
            headers["Retry-After"] = str(retry_after)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    if x_ms_retry_after_ms is not None:
        headers["x-ms-retry-after-ms"] = str(x_ms_retry_after_ms)
    seconds = retry_after if isinstance(retry_after, int) else 1
    return Throttled(seconds, headers, limit)


@attrs.frozen
class ResetBeforeBody:
    """Reset the connection (TCP RST) after the request headers, before reading the body."""

    name = "reset_before_body"

    def apply(self, exchange: Exchange) -> None:
        exchange.reset()


@attrs.frozen
class ResetBeforeResponse:
    """Read the request (and, with `handled`, let the service act on it), then reset: a lost answer."""

    handled: bool = True
    name = "reset_before_response"

    def apply(self, exchange: Exchange) -> None:
        if self.handled:
            exchange.respond()
        else:
            exchange.request()
        exchange.reset()


@attrs.frozen
class Delay:
    """Handle the request, then wait `seconds` before the status line (a slow service)."""

    seconds: float
    name = "delay"

    def apply(self, exchange: Exchange) -> None:
        response = exchange.respond()
        if exchange.sleep(self.seconds):
            exchange.send(response)


@attrs.frozen
class StallBody:
    """Send the status line and headers at once, then wait `seconds` before the body."""

    seconds: float
    name = "stall_body"

    def apply(self, exchange: Exchange) -> None:
        exchange.send(exchange.respond(), stall_seconds=self.seconds)


@attrs.frozen
class TruncatedBody:
    """The real answer's headers (full Content-Length), half its body, then the connection closes."""

    name = "truncated_body"

    def apply(self, exchange: Exchange) -> None:
        exchange.send(exchange.respond(), truncate=True)


@attrs.frozen
class MalformedJson:
    """200 with a JSON content type and a body that breaks off mid-object."""

    name = "malformed_json"

    def apply(self, exchange: Exchange) -> None:
        exchange.respond()
        exchange.send(Response(200, MALFORMED_JSON, JSON))


@attrs.frozen
class HtmlPage:
    """An HTML error page, as a gateway or proxy sends it, with `status` (502, or 200 from a captive portal)."""

    status: int = 502
    name = "html_page"

    def apply(self, exchange: Exchange) -> None:
        phrase = HTTPStatus(self.status).phrase if self.status in HTTPStatus._value2member_map_ else "Error"
        page = HTML_ERROR_PAGE.format(status=self.status, phrase=phrase)
        exchange.send(Response(self.status, page.encode("utf-8"), {"Content-Type": "text/html"}))


@attrs.frozen
class ContentType:
    """The real answer under another Content-Type (JSON sent as `text/plain`)."""

    value: str = "text/plain"
    name = "content_type"

    def apply(self, exchange: Exchange) -> None:
        response = exchange.respond()
        exchange.send(attrs.evolve(response, headers={**response.headers, "Content-Type": self.value}))


@attrs.frozen
class DropFields:
    """The real answer without some top-level JSON fields (a chat answer without `choices` or `usage`)."""

    fields: tuple[str, ...] = attrs.field(converter=_names)
    name = "drop_fields"

    def apply(self, exchange: Exchange) -> None:
        response = exchange.respond()
        try:
            payload = json.loads(response.body)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            trimmed = {key: value for key, value in payload.items() if key not in self.fields}
            response = attrs.evolve(response, body=_as_body(trimmed))
        exchange.send(response)


@attrs.frozen
class Redirect:
    """A redirect to `location` (for example a :class:`RecordingServer`); the service never sees the request."""

    location: str
    status: int = 307
    name = "redirect"

    def apply(self, exchange: Exchange) -> None:
        exchange.send(Response(self.status, b"", {**JSON, "Location": self.location}))


@attrs.frozen
class ContentFilter:
    """Azure's content-filter 400 whatever the prompt."""

    name = "content_filter"

    def apply(self, exchange: Exchange) -> None:
        exchange.send(prompt_blocked().response())


@attrs.define
class FaultRule:
    """An armed fault and what it matches; `hits` counts the requests it took over."""

    fault: Fault
    kind: str | None = None
    path: re.Pattern[str] | None = None
    method: str | None = None
    # None: every matching request until the faults are cleared.
    remaining: int | None = 1
    hits: int = 0

    def matches(self, kind: str, method: str, path: str) -> bool:
        return (
            (self.kind is None or self.kind == kind)
            and (self.method is None or self.method == method)
            and (self.path is None or self.path.fullmatch(path) is not None)
        )


class FaultTable:
    """The armed faults, thread-safe; the first matching rule with uses left wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(
        self,
        fault: Fault,
        *,
        kind: str | None = None,
        path: str | None = None,
        method: str | None = None,
        times: int | None = 1,
    ) -> FaultRule:
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError(f"times must be a positive integer or None (every time), not {times!r}")
        rule = FaultRule(
            fault=fault,
            kind=kind,
            path=None if path is None else re.compile(path),
            method=None if method is None else method.upper(),
            remaining=times,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, kind: str, method: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(kind, method, path):
                    rule.hits += 1
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules.remove(rule)
                    return rule.fault
        return None
