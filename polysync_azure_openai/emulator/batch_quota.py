"""The enqueued-token quota of Global Batch deployments (wire-samples §8).

A deployment may hold so many tokens in batches at once. A batch's tokens count from the moment
it is accepted (at validation, or at create where the region "fails fast") until it leaves
`in_progress` (finalizing, cancelling, expiry). One more batch over the limit fails validation
with `token_limit_exceeded`, or, failing fast, its create is answered with that code.
"""

from __future__ import annotations

import threading
from typing import Any

import attrs

from .dataplane import count_tokens

TOKEN_LIMIT_EXCEEDED = "token_limit_exceeded"  # noqa: S105 (an error code)


@attrs.frozen
class Quota:
    tokens: int
    fail_fast: bool = False


def line_tokens(body: dict[str, Any]) -> int:
    """The prompt tokens a batch line enqueues: the words of its messages or inputs, at least 1."""
    texts: list[str] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                texts.append(content)
    value = body.get("input")
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, list):
        texts.extend(text for text in value if isinstance(text, str))
    return max(1, sum(count_tokens(text) for text in texts))


def limit_message(deployment: str, model: str, limit: int) -> str:
    return (
        f"Enqueued token limit reached for {deployment} in model {model}. Limit: {limit:,} enqueued tokens. "
        "Please try again once some in_progress batches have been completed."
    )


class QuotaTable:
    """Quotas by deployment name, thread-safe; none set means no limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._quotas: dict[str, Quota] = {}

    def set(self, deployment: str, tokens: int | None, *, fail_fast: bool = False) -> None:
        if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
            raise ValueError(f"tokens must be a positive integer or None (no limit), not {tokens!r}")
        with self._lock:
            if tokens is None:
                self._quotas.pop(deployment, None)
            else:
                self._quotas[deployment] = Quota(tokens, fail_fast)

    def get(self, deployment: str) -> Quota | None:
        with self._lock:
            return self._quotas.get(deployment)

    def any(self) -> bool:
        with self._lock:
            return bool(self._quotas)
