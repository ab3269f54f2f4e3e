"""The emulator's clock and the batch timing settings that are measured against it.

Files and batches take every timestamp from :class:`Clock`, so a test walks a batch through all
its states by advancing the clock instead of sleeping. Tokens and synchronous answers keep real
time: advancing a day must not expire the token a test is still using.
"""

from __future__ import annotations

import math
import threading
import time

import attrs

MICROSECONDS = 1_000_000


def to_microseconds(seconds: float) -> int:
    """Seconds as whole microseconds: integer arithmetic keeps progress counts exact (412 of 1000)."""
    return round(seconds * MICROSECONDS)


def to_unix_seconds(microseconds: int) -> int:
    """The wire form of a timestamp: whole Unix seconds."""
    return microseconds // MICROSECONDS


class Clock:
    """Unix time that moves only when told to (the default), or with real time plus the advances.

    It starts at the real time of its creation, or at `start` (Unix seconds; earlier gives the
    resource a history older than the test, as a resource in use for days has), rounded down to a
    whole second so that wire timestamps and the phase arithmetic agree.
    """

    def __init__(self, *, running: bool = False, start: float | None = None) -> None:
        if start is not None and (isinstance(start, bool) or not isinstance(start, (int, float)) or not math.isfinite(start)):
            raise ValueError(f"the clock starts at a finite Unix time, not {start!r}")
        self._lock = threading.Lock()
        self._frozen_at = int(time.time() if start is None else start) * MICROSECONDS
        # While running, now = real time + offset.
        self._offset = 0
        self._running = False
        self.running = running

    def __repr__(self) -> str:
        return f"<Clock {self.now():.6f} {'running' if self.running else 'frozen'}>"

    def now(self) -> float:
        """The emulated Unix time in seconds."""
        return self.now_us() / MICROSECONDS

    def now_us(self) -> int:
        with self._lock:
            if self._running:
                return time.time_ns() // 1000 + self._offset
            return self._frozen_at

    def advance(self, seconds: float) -> float:
        """Move the clock forward; return the new time."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"the clock only moves forward by a finite number of seconds, not {seconds!r}")
        step = to_microseconds(seconds)
        with self._lock:
            if self._running:
                self._offset += step
            else:
                self._frozen_at += step
        return self.now()

    @property
    def running(self) -> bool:
        """Whether the clock follows real time; stopping it freezes the current time."""
        with self._lock:
            return self._running

    @running.setter
    def running(self, running: bool) -> None:
        with self._lock:
            real = time.time_ns() // 1000
            if running and not self._running:
                self._offset = self._frozen_at - real
            elif not running and self._running:
                self._frozen_at = real + self._offset
            self._running = bool(running)


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number of seconds >= 0, not {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive finite number, not {value!r}")


@attrs.define(on_setattr=attrs.setters.validate)
class BatchTiming:
    """How long each batch phase lasts on the emulator's clock; change freely during a test.

    A change applies from the next time a batch is read: phases already passed keep their
    timestamps, and a new rate counts from that read on.
    """

    validating_seconds: float = attrs.field(default=1.0, validator=_non_negative)
    #: Lines processed per clock second while `in_progress`.
    requests_per_second: float = attrs.field(default=100.0, validator=_positive)
    finalizing_seconds: float = attrs.field(default=1.0, validator=_non_negative)
    cancelling_seconds: float = attrs.field(default=1.0, validator=_non_negative)
