"""What a deployment's quota counts and says: Azure's cost estimate, the remaining headers, the window.

The pacer (pacer.py) acts on these; they hold no policy of their own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

#: 429s naming resets closer together than this name the same one (seen by several threads).
SAME_RESET: Final = 0.05
_HOUR: Final = 3600.0


def human(seconds: float) -> str:
    """A wait for people: ``0.25 s``, ``90 s``, ``2 min``, ``24 h``, ``3 days``."""
    if seconds < 100:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < _HOUR:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days" if seconds < 1000 * 86400 else "more than 1,000 days"


def estimated_tokens(body: Mapping[str, Any]) -> int:
    """Azure's estimate of a request's cost: prompt characters / 4 (rounded up), plus its token limit.

    The prompt is every message's text (chat) or every input text (embeddings).
    """
    chars = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                chars += len(content)
    inputs = body.get("input")
    if isinstance(inputs, str):
        chars += len(inputs)
    elif isinstance(inputs, list):
        chars += sum(len(text) for text in inputs if isinstance(text, str))
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    completion = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 0
    return -(-chars // 4) + completion


def remaining(headers: Mapping[str, str]) -> tuple[int | None, int | None] | None:
    """Azure's remaining requests and tokens; None when it sent neither (``-1`` and text count as absent)."""
    requests = _count(headers.get("x-ratelimit-remaining-requests"))
    tokens = _count(headers.get("x-ratelimit-remaining-tokens"))
    return None if requests is None and tokens is None else (requests, tokens)


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isascii() and value.isdecimal() else None


class Window:
    """The resets Azure named in its 429s, and the window they imply.

    A 429's wait counts from a moment between the request leaving and its answer, so each reset
    is known as an interval, ``(low, high)``; the window is an interval too, narrowed by every
    reset that follows.
    """

    def __init__(self) -> None:
        self._reset: tuple[float, float] | None = None
        self._period: tuple[float, float] | None = None

    @property
    def known(self) -> bool:
        """Whether Azure named any reset yet."""
        return self._reset is not None

    def learn(self, low: float, high: float) -> None:
        """A reset Azure named, between ``low`` and ``high``; resets a window apart give the window.

        Predictions use the latest reset and the longest window the evidence allows, so they
        come late rather than early: a late one idles a moment, an early one fetches a 429.
        """
        if self._reset is None:
            self._reset = (low, high)
            return
        last_low, last_high = self._reset
        if high - last_high <= SAME_RESET:
            return  # the same reset, seen by another thread (or an older one)
        span = (low - last_high, high - last_low)
        windows = 1 if self._period is None else max(1, round((low + high - last_low - last_high) / sum(self._period)))
        fits = (span[0] / windows, span[1] / windows)
        if self._period is not None:
            both = (max(self._period[0], fits[0]), min(self._period[1], fits[1]))
            # Evidence that contradicts the window learnt so far starts the learning afresh.
            fits = both if both[0] <= both[1] else fits
        self._period = fits if fits[1] > SAME_RESET else None
        self._reset = (low, high)

    def next(self, now: float) -> float | None:
        """The next reset after ``now`` as late as the evidence allows; None when unknown."""
        if self._reset is None:
            return None
        last = self._reset[1]
        if last > now:
            return last
        if self._period is None:
            return None
        period = self._period[1]
        return last + (math.floor((now - last) / period) + 1) * period

    def passed(self, since: float, now: float) -> bool:
        """Whether a known or predicted reset fell after ``since`` and by ``now``."""
        if self._reset is None or now < self._reset[1]:
            return False
        last = self._reset[1]
        latest = last if self._period is None else last + math.floor((now - last) / self._period[1]) * self._period[1]
        return latest > since
