"""A deployment's rate limit as Azure's quota documentation describes it, and Azure's 429s.

Azure adds each request's *estimated* token cost (prompt characters / 4 plus ``max_tokens``) to a
running count per deployment that resets each minute, counts requests the same way, and answers
429 once either would pass the deployment's limit; the throttled request costs nothing. Success
answers carry only ``x-ratelimit-remaining-requests`` and ``-tokens``; a 429 says when to come
back in one of three shapes (wire-samples.md §5). Here the minute is a configurable window of
seconds, so that tests and benchmarks run on the real clock in seconds, not minutes.

Windows follow each other back to back from the first request after a limit is set, so the
earliest any client can finish N requests against L per window is ``(ceil(N / L) - 1)`` windows.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

#: How a 429 says when to come back: `retry-after-ms` (with `retry-after`), `retry-after` alone,
#: or neither (then only `x-ratelimit-reset-requests` / `-tokens`) -- all three are seen from Azure.
ThrottleShape = Literal["retry-after-ms", "retry-after", "none"]
THROTTLE_SHAPES: tuple[str, ...] = ("retry-after-ms", "retry-after", "none")
DEFAULT_WINDOW_SECONDS = 60.0

# The operation ids Azure names in a 429's message, by request kind (as in the request log).
OPERATIONS = {
    "chat": "ChatCompletions_Create",
    "embeddings": "Embeddings_Create",
    "files.upload": "Files_Upload",
    "files.list": "Files_List",
    "files.get": "Files_Get",
    "files.delete": "Files_Delete",
    "files.content": "Files_GetFileContent",
    "batches.create": "Batches_Create",
    "batches.list": "Batches_List",
    "batches.get": "Batches_Get",
    "batches.cancel": "Batches_Cancel",
}


def throttle_message(
    retry_seconds: int,
    operation: str = "ChatCompletions_Create",
    api_version: str = "2024-10-21",
    limit: str = "token",
) -> str:
    return (
        f"Requests to the {operation} Operation under Azure OpenAI API version {api_version} have "
        f"exceeded {limit} rate limit of your current OpenAI S0 pricing tier. Please retry after "
        f"{retry_seconds} second{'s' if retry_seconds != 1 else ''}. Please go here: https://aka.ms/oai/quotaincrease "
        "if you would like to further increase the default rate limit."
    )


def duration(seconds: float) -> str:
    """OpenAI's duration notation, as the reset headers use it: `850ms`, `4s`, `1.5s`, `6m0s`."""
    milliseconds = math.ceil(seconds * 1000)
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    minutes, rest = divmod(milliseconds, 60_000)
    text = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}m{text}" if minutes else text


def shaped_headers(shape: ThrottleShape, seconds: float) -> dict[str, str]:
    """The retry headers of a 429 asking for a wait of `seconds`, in one of Azure's shapes."""
    whole = math.ceil(seconds)
    if shape == "retry-after-ms":
        return {"retry-after-ms": str(math.ceil(seconds * 1000)), "retry-after": str(whole)}
    if shape == "retry-after":
        return {"retry-after": str(whole)}
    return {"x-ratelimit-reset-requests": duration(seconds), "x-ratelimit-reset-tokens": duration(seconds)}


def estimated_tokens(body: Mapping[str, Any]) -> int:
    """Azure's estimate of a request's cost: prompt characters / 4 (rounded up), plus `max_tokens`.

    The prompt is every message's text content (chat) or every input text (embeddings). Without
    `max_tokens` or `max_completion_tokens` the estimate is the prompt alone.
    """
    texts: list[str] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        texts += [m["content"] for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str)]
    inputs = body.get("input")
    if isinstance(inputs, str):
        texts.append(inputs)
    elif isinstance(inputs, list):
        texts += [text for text in inputs if isinstance(text, str)]
    budget = body.get("max_completion_tokens", body.get("max_tokens"))
    completion = budget if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0 else 0
    return math.ceil(sum(len(text) for text in texts) / 4) + completion


def _positive_count(instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{attribute.name} must be a positive whole number per window (or None: no limit), not {value!r}")


def _positive_seconds(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive number of seconds, not {value!r}")


def _shape(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in THROTTLE_SHAPES:
        raise ValueError(f"{attribute.name} must be one of {', '.join(THROTTLE_SHAPES)}, not {value!r}")


@attrs.frozen
class RateLimit:
    """Requests and estimated tokens a deployment takes per window; None leaves one unlimited."""

    requests: int | None = attrs.field(default=None, validator=_positive_count)
    tokens: int | None = attrs.field(default=None, validator=_positive_count)
    window: float = attrs.field(default=DEFAULT_WINDOW_SECONDS, validator=_positive_seconds)
    shape: ThrottleShape = attrs.field(default="retry-after-ms", validator=_shape)

    def __attrs_post_init__(self) -> None:
        if self.requests is None and self.tokens is None:
            raise ValueError("a rate limit needs requests or tokens per window (or both)")


@attrs.frozen
class Verdict:
    """What the limit says about one request: let it through or not, and what is left."""

    allowed: bool
    remaining_requests: int | None
    remaining_tokens: int | None
    #: Seconds until the window resets (what a 429 asks the client to wait).
    wait: float
    #: Which limit ran out, in Azure's words: `call` (requests) or `token`.
    exhausted: str = "token"
    shape: ThrottleShape = "retry-after-ms"


@attrs.define
class _Window:
    limit: RateLimit
    started: float | None = None
    index: int = 0
    requests: int = 0
    tokens: int = 0


class RateLimiter:
    """The windows of every limited deployment; thread-safe, on a monotonic real clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def set(self, deployment: str, limit: RateLimit | None) -> None:
        """Limit `deployment` (None: no limit); its first window opens with its next request."""
        with self._lock:
            if limit is None:
                self._windows.pop(deployment, None)
            else:
                self._windows[deployment] = _Window(limit)

    def limits(self) -> dict[str, RateLimit]:
        with self._lock:
            return {name: window.limit for name, window in self._windows.items()}

    def take(self, deployment: str, tokens: int) -> Verdict | None:
        """Count a request of `tokens` estimated tokens if the window has room; None when unlimited."""
        with self._lock:
            window = self._windows.get(deployment)
            if window is None:
                return None
            now = self._clock()
            limit = window.limit
            if window.started is None:
                window.started = now
            index = int((now - window.started) // limit.window)
            if index != window.index:
                window.index, window.requests, window.tokens = index, 0, 0
            wait = window.started + (index + 1) * limit.window - now
            over_requests = limit.requests is not None and window.requests + 1 > limit.requests
            over_tokens = limit.tokens is not None and window.tokens + tokens > limit.tokens
            allowed = not (over_requests or over_tokens)
            if allowed:
                window.requests += 1
                window.tokens += tokens
            return Verdict(
                allowed,
                None if limit.requests is None else limit.requests - window.requests,
                None if limit.tokens is None else limit.tokens - window.tokens,
                wait,
                "call" if over_requests else "token",
                limit.shape,
            )
