"""What to do after a failed attempt: the transport rules of second-release.md §A as one pure function.

``decide`` reads no clock, no randomness and no I/O: the jitter comes in as an argument, so the
whole policy is tested from a table (tests/http/test_decide.py).
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from .classify import Transport

RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses that say the service did nothing: a create may be sent again (§A).
NOTHING_DONE_STATUSES: Final = frozenset({408, 429})
#: Upper bound on the time one request may spend waiting: between its attempts, and for its
#: deployment's quota (pacer.py). A longer 'Request Timeout Seconds' raises it.
MAX_TOTAL_WAIT: Final = 120.0
BACKOFF_BASE: Final = 0.5
BACKOFF_CAP: Final = 8.0


class Kind(enum.Enum):
    """What sending a request again can cost."""

    #: Only cost: chat, embeddings, every GET, the ARM listing. Repeated on every transient class.
    IDEMPOTENT = "idempotent"
    #: Creates something (batch create): repeated only when nothing was created.
    CREATE = "create"
    # The 0.1.0 names, kept as aliases so callers written against them keep working.
    READ = "idempotent"
    POST = "idempotent"
    ONCE = "create"


#: The 0.1.0 name of :class:`Kind`.
RetryMode = Kind


@attrs.frozen
class Answered:
    """An HTTP status, with the wait Azure asked for (``retry_after``, seconds) when it named one."""

    status: int
    retry_after: float | None = None


Outcome = Transport | Answered


@attrs.frozen
class Budget:
    """What one logical request may spend: repeats (``Max Retries``) and seconds of waiting."""

    max_retries: int
    max_total_wait: float = MAX_TOTAL_WAIT


@attrs.frozen
class Attempt:
    """Where a logical request stands: the attempt that just ended (1-based) and what came before.

    The resend after a 401 with a renewed token keeps ``number``: it is not a retry (§A).
    """

    number: int = 1
    waited: float = 0.0
    renewed: bool = False

    def held(self, seconds: float) -> Attempt:
        """The same attempt, after ``seconds`` held back by its deployment's quota before it was sent."""
        return attrs.evolve(self, waited=self.waited + seconds) if seconds > 0 else self

    def after(self, decision: Decision) -> Attempt:
        if isinstance(decision, Renew):
            return attrs.evolve(self, renewed=True)
        if isinstance(decision, Wait):
            return attrs.evolve(self, number=self.number + 1, waited=self.waited + decision.seconds)
        return self


@attrs.frozen
class Wait:
    """Send again after ``seconds``."""

    seconds: float


@attrs.frozen
class GiveUp:
    """Raise the last failure.

    ``wait`` is set when the wait asked for was what passed the budget (the quota message says so).
    """

    wait: float | None = None


@attrs.frozen
class LookUp:
    """A create that may have happened: the caller must look for what it made before creating again."""


@attrs.frozen
class Renew:
    """A 401: resend once with a renewed token."""


Decision = Wait | GiveUp | LookUp | Renew
LOOK_UP: Final = LookUp()
RENEW: Final = Renew()


def decide(outcome: Outcome, kind: Kind, attempt: Attempt, budget: Budget, *, jitter: float = 1.0) -> Decision:
    """The next step after ``attempt`` ended in ``outcome`` (a failure; successes never get here).

    ``jitter`` in [0.5, 1] scales the exponential backoff used when Azure named no wait.
    """
    if isinstance(outcome, Answered):
        status = outcome.status
        if status == 401:
            return GiveUp() if attempt.renewed else RENEW
        if status not in RETRY_STATUSES:
            return GiveUp()
        if kind is Kind.CREATE and status not in NOTHING_DONE_STATUSES:
            return LOOK_UP  # a 5xx may come after the service acted: whatever Max Retries says
        wait = backoff(attempt.number, jitter) if outcome.retry_after is None else outcome.retry_after
    else:
        if outcome in (Transport.UNTRUSTED, Transport.INVALID):
            return GiveUp()
        if kind is Kind.CREATE and outcome is Transport.MAYBE_PROCESSED:
            return LOOK_UP
        wait = backoff(attempt.number, jitter)
    if attempt.number > budget.max_retries:
        return GiveUp()
    if attempt.waited + wait > budget.max_total_wait:
        # Azure's wait is its answer, not a hint: a shorter one would only fetch another 429.
        return GiveUp(wait=wait)
    return Wait(wait)


def backoff(attempt: int, jitter: float = 1.0) -> float:
    """0.5 s doubling per attempt up to 8 s, scaled by ``jitter``."""
    delay: float = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempt - 1))
    return delay * jitter
