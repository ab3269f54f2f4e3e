"""decide: the §A rule table, row by row. Pure: no server, no clock, jitter fixed at 1."""

from __future__ import annotations

import pytest

from polysync_azure_openai.http.classify import Transport
from polysync_azure_openai.http.decide import (
    LOOK_UP,
    RENEW,
    Answered,
    Attempt,
    Budget,
    Decision,
    GiveUp,
    Kind,
    Outcome,
    RetryMode,
    Wait,
    backoff,
    decide,
)

IDEM, CREATE = Kind.IDEMPOTENT, Kind.CREATE
NOT_SENT, MAYBE, UNTRUSTED, INVALID = Transport.NOT_SENT, Transport.MAYBE_PROCESSED, Transport.UNTRUSTED, Transport.INVALID
FIRST = Attempt()
LAST = Attempt(number=4)  # the 4th attempt of Max Retries 3
GIVE_UP = GiveUp  # any GiveUp, whatever its reason


ROWS: list[tuple[str, Outcome, Kind, Attempt, int, Decision | type[GiveUp]]] = [
    # Max Retries 0: every request is sent exactly once, whatever the class.
    ("idempotent-not-sent-max-0", NOT_SENT, IDEM, FIRST, 0, GIVE_UP),
    ("idempotent-maybe-max-0", MAYBE, IDEM, FIRST, 0, GIVE_UP),
    ("idempotent-503-max-0", Answered(503), IDEM, FIRST, 0, GIVE_UP),
    ("create-429-max-0", Answered(429, 0.005), CREATE, FIRST, 0, GIVE_UP),
    # ...except a create that may exist: looked up whatever Max Retries says.
    ("create-maybe-max-0", MAYBE, CREATE, FIRST, 0, LOOK_UP),
    ("create-503-max-0", Answered(503), CREATE, FIRST, 0, LOOK_UP),
    # ...and the one resend after a 401 with a renewed token, which is no retry.
    ("401-first-max-0", Answered(401), IDEM, FIRST, 0, RENEW),
    ("401-create-max-0", Answered(401), CREATE, FIRST, 0, RENEW),
    ("401-again", Answered(401), IDEM, Attempt(renewed=True), 3, GIVE_UP),
    # Idempotent kinds repeat on every transient class, backing off 0.5 s, 1 s, 2 s ...
    ("idempotent-not-sent", NOT_SENT, IDEM, FIRST, 3, Wait(0.5)),
    ("idempotent-maybe", MAYBE, IDEM, FIRST, 3, Wait(0.5)),
    ("idempotent-maybe-3rd", MAYBE, IDEM, Attempt(number=3), 3, Wait(2.0)),
    ("idempotent-maybe-last", MAYBE, IDEM, LAST, 3, GIVE_UP),
    *[(f"idempotent-{s}", Answered(s), IDEM, FIRST, 3, Wait(0.5)) for s in (408, 429, 500, 502, 503, 504)],
    # ...after the wait Azure asked for, when it asked.
    ("idempotent-429-asked", Answered(429, 7.0), IDEM, FIRST, 3, Wait(7.0)),
    ("idempotent-503-asked-0", Answered(503, 0.0), IDEM, FIRST, 3, Wait(0.0)),
    # A wait Azure asks for is waited in full, never cut short into another 429...
    ("idempotent-429-asked-90-s", Answered(429, 90.0), IDEM, FIRST, 3, Wait(90.0)),
    # ...and one longer than the budget left (a daily quota) ends the call at once, saying so.
    ("idempotent-429-asked-too-long", Answered(429, 600.0), IDEM, FIRST, 3, GiveUp(wait=600.0)),
    ("idempotent-429-asked-a-day", Answered(429, 86400.0), IDEM, FIRST, 3, GiveUp(wait=86400.0)),
    # Permanent: never repeated.
    ("untrusted", UNTRUSTED, IDEM, FIRST, 3, GIVE_UP),
    ("invalid", INVALID, IDEM, FIRST, 3, GIVE_UP),
    *[(f"idempotent-{s}", Answered(s), IDEM, FIRST, 3, GIVE_UP) for s in (301, 400, 403, 404, 409, 413, 422, 501)],
    # A create repeats only when nothing was created (not sent, 408, 429), within Max Retries.
    ("create-not-sent", NOT_SENT, CREATE, FIRST, 3, Wait(0.5)),
    ("create-408", Answered(408), CREATE, FIRST, 3, Wait(0.5)),
    ("create-429-asked", Answered(429, 0.005), CREATE, FIRST, 3, Wait(0.005)),
    ("create-429-last", Answered(429, 0.005), CREATE, LAST, 3, GIVE_UP),
    ("create-not-sent-last", NOT_SENT, CREATE, LAST, 3, GIVE_UP),
    # ...and looks up after a maybe-processed or a 5xx, on any attempt.
    ("create-maybe", MAYBE, CREATE, FIRST, 3, LOOK_UP),
    ("create-maybe-last", MAYBE, CREATE, LAST, 3, LOOK_UP),
    *[(f"create-{s}", Answered(s), CREATE, FIRST, 3, LOOK_UP) for s in (500, 502, 503, 504)],
    ("create-400", Answered(400), CREATE, FIRST, 3, GIVE_UP),
    ("create-untrusted", UNTRUSTED, CREATE, FIRST, 3, GIVE_UP),
    # At most 120 s of waiting per request in all.
    ("total-wait-reached", Answered(429, 60.0), IDEM, Attempt(number=3, waited=61.0), 10, GiveUp(wait=60.0)),
    ("total-wait-just-fits", Answered(429, 60.0), IDEM, Attempt(number=3, waited=60.0), 10, Wait(60.0)),
]


@pytest.mark.parametrize("outcome,kind,attempt,max_retries,expected", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_decide(outcome: Outcome, kind: Kind, attempt: Attempt, max_retries: int, expected: Decision | type[GiveUp]) -> None:
    decision = decide(outcome, kind, attempt, Budget(max_retries))
    if expected is GiveUp:
        assert isinstance(decision, GiveUp) and decision.wait is None, decision
    elif isinstance(expected, GiveUp):
        assert isinstance(decision, GiveUp) and decision.wait == expected.wait, decision
    else:
        assert decision == expected


def test_backoff_doubles_to_8_s_and_jitter_scales_it() -> None:
    assert [backoff(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert decide(MAYBE, IDEM, Attempt(number=2), Budget(3), jitter=0.5) == Wait(0.5)


def test_attempt_counts_retries_and_waiting_but_not_the_renewal() -> None:
    renewed = FIRST.after(RENEW)
    assert (renewed.number, renewed.renewed) == (1, True)
    waited = renewed.after(Wait(2.5)).after(Wait(1.0))
    assert (waited.number, waited.waited, waited.renewed) == (3, 3.5, True)
    assert waited.after(LOOK_UP) == waited
    # Held back by the quota before it was sent: waiting, but no retry.
    held = waited.held(2.0)
    assert (held.number, held.waited) == (3, 5.5) and held.held(0.0) == held
    # However short the hold: it counts against the budget of waiting.
    assert held.held(0.25).waited == 5.75


@pytest.mark.parametrize("old,new", [(RetryMode.READ, IDEM), (RetryMode.POST, IDEM), (RetryMode.ONCE, CREATE)])
def test_the_0_1_0_mode_names_are_kinds(old: Kind, new: Kind) -> None:
    assert old is new
