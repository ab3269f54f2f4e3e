"""Creates that are never repeated blindly (second-release §A): send, and when the outcome is
unknown, look for what the create made before creating again.

Nothing created (not sent, 408, 429): ``HttpClient.send`` has already sent it again, after the
wait Azure asked for, within ``Max Retries``. Maybe created (the answer lost, a 5xx, a 2xx whose
body is unusable): the caller's look-up runs whatever ``Max Retries`` says, and the create is
sent again only when the look-up is sure nothing was made and retries are left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final, TypeVar

import attrs
import requests

from ..errors import RemoteError, TransportError
from .client import MayExist

log = logging.getLogger(__name__)

T = TypeVar("T")
#: After an unknown outcome, how long to keep looking before creating again: a list may lag
#: behind the create it should show (spec §4).
REATTACH_SECONDS: Final = 30.0


def create_or_find(
    send: Callable[[int], requests.Response],
    read: Callable[[requests.Response], T],
    find: Callable[[], T | None],
    *,
    max_retries: int,
    what: str,
    hint: str,
) -> T:
    """``read(send(retries_left))``, or what ``find`` finds after an unknown outcome.

    ``what`` names the create in log records ("Creating the batch"); ``hint`` tells the operator
    how to find the thing by hand when even the look-up failed.
    """
    retries_left = max_retries
    while True:
        unknown: RemoteError | None = None
        try:
            response = send(retries_left)
        except MayExist as exc:
            unknown = exc.error
        if unknown is None:
            try:
                return read(response)
            except RemoteError as exc:
                unknown = exc  # Azure said 2xx: it exists, only its answer is unusable
        log.warning("%s: %s; looking for it before creating again", what, unknown.detail.describe())
        found = look_up(find, unknown, hint)
        if found is not None:
            return found
        retries_left -= unknown.detail.attempts
        if retries_left < 0:
            raise unknown
        log.warning("%s: nothing was made; creating it again", what)


def look_up(find: Callable[[], T | None], unknown: RemoteError, hint: str) -> T | None:
    """What ``find`` finds; None when about 30 s of look-ups are sure there is nothing.

    When the last look-up itself failed, nobody knows whether the create happened: raise, saying so.
    """
    deadline = time.monotonic() + REATTACH_SECONDS
    delay = 0.25
    while True:
        failure: RemoteError | None = None
        try:
            found = find()
        except RemoteError as exc:
            log.warning("The look-up failed: %s", exc.detail.describe())
            found, failure = None, exc
        if found is not None:
            return found
        if time.monotonic() + delay > deadline:
            if failure is None:
                return None
            message = (
                f"{unknown.detail.message}; it may have been created, and looking for it failed too "
                f"({failure.detail.describe()}). {hint}"
            )
            raise TransportError(attrs.evolve(unknown.detail, message=message), transient=True)
        time.sleep(delay)
        delay = min(delay * 2, 8.0)
