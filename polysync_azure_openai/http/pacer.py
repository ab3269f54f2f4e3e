"""The pacer: one lane per (endpoint, deployment), shared by every thread and platform of the process.

A deployment's quota (requests and tokens per minute) belongs to the deployment, not to a caller
(second-release.md §H). When each thread finds the 429s on its own, a fan-out of runs turns the
quota into failed runs while it sits idle between everyone's backoffs. So every chat and
embedding call passes its deployment's lane, which knows only what Azure's answers said:

- A 429's wait (``retry-after-ms``, ``retry-after``, else ``x-ratelimit-reset-*``) pauses the
  lane: every call to that deployment waits it out, then one call (the probe) asks Azure before
  the rest go, since Azure's budget after a reset is unknown until an answer says it.
- ``x-ratelimit-remaining-requests`` / ``-tokens``, less what was sent since, is the budget. A
  call it cannot cover waits for the answers in flight (they say what is left) instead of
  fetching its own 429; with nothing in flight, one probe asks.
- Once two 429s have named resets a window apart, the lane knows the window: an exhausted budget
  holds calls until the next reset instead of probing into a 429, and a budget smaller than the
  calls waiting is spread over the time left to the reset.

A call that would wait past its own budget (``decide.Budget``) is refused at once, unsent, with
the 429 that paused the lane. A deployment that is not limited (no remaining headers, or enough
for the calls in flight) is never held: a lane then costs an uncontended lock in and out. A lane
is an in-process cache of what Azure's headers said and nothing more: no state outlives the
process or crosses it; worker processes converge because they read the same headers.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Final, NamedTuple

import attrs

from .quota import Window, human, remaining

log = logging.getLogger(__name__)

#: A per-minute quota never asks for more. A longer ask (a daily quota, or a malformed header)
#: refuses the calls that cannot wait so long, holds the others this long, then one call asks again.
MAX_PAUSE: Final = 60.0
_PLENTY: Final = 1 << 62


@attrs.frozen
class Throttle:
    """A 429 as the calls it holds back report it: Azure's words, and the wait it asked for."""

    code: str | None
    message: str
    request_id: str | None
    #: The retry headers as Azure sent them (``retry-after-ms: '5500', retry-after: '6'``).
    sent: str
    #: Seconds asked for (or the backoff, when Azure named no usable wait).
    asked: float
    #: Whether Azure named the reset to the millisecond (``retry-after-ms``, a reset duration).
    exact: bool = False


class Admission(NamedTuple):
    """A call let through: its budget epoch (a pause or a reset starts a new one), its tokens,
    when it went, whether as the probe, and how long it was held."""

    epoch: int
    tokens: int
    sent_at: float
    probe: bool
    held: float


@attrs.frozen
class Refusal:
    """A call the quota would hold past its budget: why, and the 429 behind it."""

    reason: str
    throttle: Throttle | None


@attrs.define
class LaneStats:
    """What a lane did, for tests and benchmarks: counts, never times."""

    admitted: int = 0
    #: Calls that had to wait at the lane (a pause, an exhausted budget, a spread).
    held: int = 0
    #: Pauses started; each is logged once, at WARNING.
    pauses: int = 0
    #: 429 answers the lane was told about.
    throttled: int = 0
    probes: int = 0
    refused: int = 0


@attrs.define(eq=False)
class _Waiter:
    ticket: int
    wake: threading.Condition

    def __lt__(self, other: _Waiter) -> bool:
        return self.ticket < other.ticket


class Lane:
    """The calls to one deployment: a pause, a budget and a queue, oldest call first."""

    def __init__(self, deployment: str, base: str) -> None:
        self.name = f"deployment '{deployment}' at {base}"
        self.stats = LaneStats()
        self._clock = time.monotonic
        self._lock = threading.Lock()
        self._tickets = itertools.count()
        self._waiting: list[_Waiter] = []
        self._in_flight = 0
        self._in_flight_tokens = 0
        # The budget: the lowest remaining counts Azure sent since it was last known afresh, less
        # every call in flight. Azure counts calls as they arrive, not as they were let through, so
        # only the lowest count is sure to include the calls already answered, and a call in
        # flight may not be counted yet.
        self._epoch = 0
        self._requests_floor: int | None = None
        self._tokens_floor: int | None = None
        self._budget_at = 0.0
        self._paused_until = 0.0
        self._asked_until = 0.0
        self._throttle: Throttle | None = None
        self._stale = False  # after a pause or a reset: one probe before the rest
        self._probe_out = False
        self._window = Window()
        self._next_slot = 0.0

    def ticket(self) -> int:
        """A call's place in the queue, kept across its retries: the oldest call goes first."""
        return next(self._tickets)

    def enter(self, ticket: int, tokens: int, may_wait: float) -> Admission | Refusal:
        """Let a call of ``tokens`` estimated tokens through, once the quota allows; wait at most ``may_wait`` s."""
        with self._lock:
            now = self._clock()
            if not self._waiting:
                if self._open(now, tokens):
                    # The common case, spelt out: every call pays for it, limited or not.
                    self._in_flight += 1
                    self._in_flight_tokens += tokens
                    self.stats.admitted += 1
                    return Admission(self._epoch, tokens, now, False, 0.0)
                when, probe = self._next(now, tokens, 1)
                if when is not None and when <= now:
                    return self._admit(now, tokens, probe, 0.0)
            return self._wait(ticket, tokens, now, now + max(0.0, may_wait))

    def _open(self, now: float, tokens: int) -> bool:
        """No pause, no reset to check, and a budget (if any) that covers one more call."""
        if now < self._paused_until or self._stale or self._window.known:
            return False
        requests, tokens_floor = self._requests_floor, self._tokens_floor
        return (requests is None or requests > self._in_flight) and (
            tokens_floor is None or tokens_floor - self._in_flight_tokens >= tokens
        )

    def leave(
        self, admission: Admission, status: int | None, headers: Mapping[str, str] | None, throttle: Throttle | None = None
    ) -> None:
        """A call's outcome (``status`` None: no answer): what its headers say is left becomes the budget.

        ``throttle`` is the 429 it got, which pauses the lane before anyone else may go.
        """
        left = remaining(headers) if headers is not None else None
        started = False
        with self._lock:
            self._in_flight -= 1
            self._in_flight_tokens -= admission.tokens
            if admission.probe:
                self._probe_out = False
            if throttle is not None:
                started = self._pause(throttle, admission.sent_at)
            informative = status is not None and status != 429 and status < 500 and (status < 300 or left is not None)
            if informative and admission.epoch == self._epoch:
                self._learn_budget(left, admission)
            if self._waiting:
                self._waiting[0].wake.notify()
        if started and throttle is not None:
            self._log_pause(throttle)

    def _log_pause(self, throttle: Throttle) -> None:
        # Once per pause, whatever the number of threads the pause holds back.
        sent = throttle.sent or "no retry header"
        if throttle.asked > MAX_PAUSE:
            log.warning(
                "Deployment %s: HTTP 429 (%s); Azure asks for %s: calls that cannot wait so long fail now, "
                "one call asks again in %s",
                self.name.removeprefix("deployment "),
                sent,
                human(throttle.asked),
                human(MAX_PAUSE),
            )
        else:
            log.warning(
                "Deployment %s: HTTP 429 (%s); every call to it waits %s",
                self.name.removeprefix("deployment "),
                sent,
                human(throttle.asked),
            )

    # -- inside the lock ---------------------------------------------------------------------------

    def _pause(self, throttle: Throttle, sent_at: float) -> bool:
        """Hold every call for the wait a 429 asked; True when this starts a pause (none was on)."""
        now, seconds = self._clock(), throttle.asked
        self.stats.throttled += 1
        started = now >= self._paused_until
        self._paused_until = max(self._paused_until, now + min(seconds, MAX_PAUSE))
        if started or now + seconds >= self._asked_until:
            self._asked_until, self._throttle = now + seconds, throttle
        self._go_stale()
        if throttle.exact and seconds <= MAX_PAUSE:
            self._window.learn(sent_at + seconds, now + seconds)
        if started:
            self.stats.pauses += 1
        for waiter in self._waiting:
            waiter.wake.notify()
        return started

    def _wait(self, ticket: int, tokens: int, start: float, deadline: float) -> Admission | Refusal:
        waiter = _Waiter(ticket, threading.Condition(self._lock))
        heapq.heappush(self._waiting, waiter)
        self.stats.held += 1
        try:
            while True:
                now = self._clock()
                if now < self._paused_until and self._asked_until > deadline:
                    return self._refuse(start, now, deadline)
                timeout = deadline - now
                if self._waiting[0] is waiter:
                    when, probe = self._next(now, tokens, len(self._waiting))
                    if when is not None and when <= now:
                        heapq.heappop(self._waiting)
                        return self._admit(now, tokens, probe, now - start)
                    if when is not None:
                        timeout = min(timeout, when - now)
                if now >= deadline:
                    return self._refuse(start, now, deadline)
                waiter.wake.wait(max(timeout, 0.0))
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
                heapq.heapify(self._waiting)
            self._wake_head()

    def _next(self, now: float, tokens: int, demand: int) -> tuple[float | None, bool]:
        """When the head of the queue may go (None: once an answer arrives), and whether as the probe."""
        if now < self._paused_until:
            return self._paused_until, False
        if not self._stale:
            if self._requests_floor is None and self._tokens_floor is None:
                return now, False  # nothing says the deployment is limited
            if self._window.known and self._window.passed(self._budget_at, now):
                self._go_stale()
        if self._stale:
            return (None, False) if self._probe_out else (now, True)
        units = self._units(tokens)
        if units >= demand:
            return now, False
        reset = self._window.next(now) if self._window.known else None
        if units >= 1:
            if reset is None:
                return now, False
            # Fewer calls left than waiting: spread them so that the budget lasts to the reset.
            slot = max(now, self._next_slot)
            if slot <= now:
                self._next_slot = now + (reset - now) / units
            return slot, False
        if self._in_flight:
            return None, False
        return (reset, False) if reset is not None else (now, True)

    def _learn_budget(self, left: tuple[int | None, int | None] | None, admission: Admission) -> None:
        """An answer's remaining counts: the new floor when the budget was unknown, else the lower."""
        requests, tokens = left or (None, None)
        if self._stale or (self._requests_floor is None and self._tokens_floor is None):
            # Afresh (the probe after a pause or a reset, or the first answer): Azure's word as is.
            self._requests_floor, self._tokens_floor = requests, tokens
            self._budget_at = admission.sent_at
            self._stale = False
            return
        if requests is not None:
            self._requests_floor = requests if self._requests_floor is None else min(self._requests_floor, requests)
        if tokens is not None:
            self._tokens_floor = tokens if self._tokens_floor is None else min(self._tokens_floor, tokens)

    def _units(self, tokens: int) -> int:
        """How many calls of ``tokens`` the budget still covers."""
        units = _PLENTY if self._requests_floor is None else self._requests_floor - self._in_flight
        if self._tokens_floor is not None:
            tokens_left = self._tokens_floor - self._in_flight_tokens
            units = min(units, tokens_left // tokens if tokens > 0 else tokens_left + 1)
        return units

    def _admit(self, now: float, tokens: int, probe: bool, held: float) -> Admission:
        self._in_flight += 1
        self._in_flight_tokens += tokens
        if probe:
            self._probe_out = True
            self.stats.probes += 1
        self.stats.admitted += 1
        self._wake_head()
        return Admission(self._epoch, tokens, now, probe, held)

    def _refuse(self, start: float, now: float, deadline: float) -> Refusal:
        self.stats.refused += 1
        held, throttle = now - start, self._throttle
        if now < self._paused_until and throttle is not None:
            reason = (
                f"not sent: Azure asked every caller of {self.name} to wait {human(self._asked_until - now)} "
                f"({throttle.sent or 'no retry header'}), more than the {human(max(0.0, deadline - now))} this run may still wait"
            )
        else:
            reason = f"not sent: held {human(held)} for the quota of {self.name}, as long as this run may wait"
        return Refusal(reason, throttle)

    def _wake_head(self) -> None:
        if self._waiting:
            self._waiting[0].wake.notify()

    def _go_stale(self) -> None:
        self._stale = True
        self._epoch += 1
        self._requests_floor = self._tokens_floor = None
        self._next_slot = 0.0


class _Lanes:
    """Every lane of the process, by (endpoint base, deployment): read without a lock, as a dict
    read is atomic; built under one. Emptied in a forked child, whose inherited locks are unsafe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lanes: dict[tuple[str, str], Lane] = {}

    def get(self, base: str, deployment: str) -> Lane:
        found = self._lanes.get((base, deployment))
        if found is not None:
            return found
        with self._lock:
            if len(self._lanes) >= MAX_LANES:
                self._lanes.clear()  # a bound, never reached by a real host: lanes are per deployment
            return self._lanes.setdefault((base, deployment), Lane(deployment, base))

    def clear(self) -> None:
        self._lanes = {}
        self._lock = threading.Lock()


#: More deployments than any resource has; reaching it forgets what the lanes knew, nothing else.
MAX_LANES: Final = 4096
LANES = _Lanes()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=LANES.clear)


def lane(base: str, deployment: str) -> Lane:
    """The process's lane of ``deployment`` at the endpoint ``base`` (origin and path prefix)."""
    return LANES.get(base, deployment)
