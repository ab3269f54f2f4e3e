"""quota.py: Azure's cost estimate, the remaining headers, and the window learnt from 429s. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from polysync_azure_openai.http.quota import SAME_RESET, Window, estimated_tokens, human, remaining


@pytest.mark.parametrize(
    "body,tokens",
    [
        ({"messages": [{"role": "system", "content": "x" * 19}, {"role": "user", "content": "x" * 20}], "max_tokens": 50}, 60),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 8}], "max_completion_tokens": 100}, 102),
        ({"messages": [{"role": "user", "content": "x" * 9}]}, 3),
        ({"input": "x" * 10}, 3),
        ({"input": ["x" * 4, "x" * 4, 7]}, 2),
        ({"messages": [{"role": "user", "content": "x" * 4}], "max_tokens": 1}, 2),
        ({"messages": [{"role": "user"}], "max_tokens": True}, 0),
    ],
    ids=["chat", "v1-reasoning", "no-limit", "embedding", "embedding-list", "one-token-limit", "malformed"],
)
def test_the_estimate_is_azures(body: dict[str, Any], tokens: int) -> None:
    assert estimated_tokens(body) == tokens


@pytest.mark.parametrize(
    "headers,left",
    [
        ({"x-ratelimit-remaining-requests": "79", "x-ratelimit-remaining-tokens": "61353"}, (79, 61353)),
        ({"x-ratelimit-remaining-tokens": "0"}, (None, 0)),
        ({"x-ratelimit-remaining-requests": "-1", "x-ratelimit-remaining-tokens": "-1"}, None),  # Responses API, observed
        ({"x-ratelimit-remaining-requests": "many", "x-ratelimit-remaining-tokens": "٣"}, None),
        ({}, None),
    ],
)
def test_remaining_counts_read_only_whole_numbers(headers: dict[str, str], left: tuple[int | None, int | None] | None) -> None:
    assert remaining(headers) == left


@pytest.mark.parametrize(
    "seconds,text",
    [
        (0.25, "0.25 s"),
        (9.5, "9.50 s"),
        (10, "10 s"),
        (90, "90 s"),
        (99, "99 s"),
        (100, "2 min"),
        (120, "2 min"),
        (3599, "60 min"),
        (3600, "1 h"),
        (5400, "2 h"),  # an hour and a half rounds to the even hour
        (86400, "24 h"),
        (2 * 86400 - 1, "48 h"),
        (2 * 86400, "2 days"),
        (3 * 86400, "3 days"),
        (3.5 * 86400, "4 days"),
        (999 * 86400, "999 days"),
        (1000 * 86400, "more than 1,000 days"),
    ],
)
def test_waits_read_as_people_say_them(seconds: float, text: str) -> None:
    assert human(seconds) == text


def test_a_window_is_learnt_from_two_resets_and_predicted_late_not_early() -> None:
    window = Window()
    assert not window.known and window.next(0.0) is None
    window.learn(10.0, 10.1)  # a 429 sent at 9.0 and answered at 9.1 asked for 1 s
    assert window.known and window.next(5.0) == 10.1 and window.next(10.2) is None
    window.learn(12.0, 12.1)  # the next window's 429: the window is 1.9 to 2.1 s
    assert window.next(12.5) == pytest.approx(14.2)  # the latest reset plus the longest window
    assert window.next(14.3) == pytest.approx(16.3)
    assert not window.passed(12.1, 14.1) and window.passed(12.1, 14.25)
    # The predicted resets count too: 14.2 falls after 14.0, and 16.3 after 14.25.
    assert window.passed(14.0, 14.25) and window.passed(14.25, 16.35) and not window.passed(14.25, 16.2)


def test_a_reset_at_now_has_passed_by_now_and_is_not_the_next_one() -> None:
    """``passed`` counts a reset falling exactly at ``now`` ("by now"); ``next`` names a reset
    strictly after ``now``, so a reset at ``now`` is no longer the next one."""
    window = Window()
    window.learn(10.0, 10.1)
    assert window.passed(10.0, 10.1)
    assert window.next(10.1) is None  # no window learnt yet: nothing is known after 10.1
    window.learn(12.0, 12.1)  # the window: 1.9 to 2.1 s
    assert window.next(12.1) == pytest.approx(14.2)


def test_the_same_reset_seen_twice_teaches_nothing() -> None:
    window = Window()
    window.learn(10.0, 10.1)
    window.learn(10.01, 10.12)  # another thread's 429 from the same burst
    assert window.next(10.5) is None


def test_a_reset_exactly_same_reset_later_is_still_the_same_reset() -> None:
    """SAME_RESET is inclusive: a reset named 50 ms after the last (exactly) is the same reset."""
    window = Window()
    window.learn(-1.0, 0.0)
    window.learn(0.0, SAME_RESET)  # 0.05 - 0.0 is exactly SAME_RESET in floating point
    assert window.next(0.01) is None  # the first reset stands, and no window was learnt


def test_resets_windows_apart_narrow_the_window() -> None:
    window = Window()
    window.learn(10.0, 10.1)
    window.learn(12.0, 12.1)  # 1.9 to 2.1
    window.learn(18.0, 18.05)  # three windows on: 1.983 to 2.017, within what was known
    assert window.next(18.5) == pytest.approx(18.05 + (18.05 - 12.0) / 3)


def test_a_looser_reset_windows_apart_keeps_the_narrower_bound() -> None:
    window = Window()
    window.learn(10.0, 10.1)
    window.learn(12.0, 12.05)  # 1.9 to 2.05
    window.learn(16.0, 16.2)  # two windows on: 1.975 to 2.1, so the window is 1.975 to 2.05
    assert window.next(16.5) == pytest.approx(16.2 + 2.05)


def test_evidence_against_the_window_starts_over() -> None:
    window = Window()
    window.learn(10.0, 10.1)
    window.learn(14.0, 14.1)  # learnt 3.9 to 4.1, but the true window was 2 s
    window.learn(15.0, 15.1)  # a reset 1 s on fits no multiple of 3.9 to 4.1: learn from this pair
    assert window.next(15.5) == pytest.approx(15.1 + 1.1)
