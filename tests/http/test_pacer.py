"""The pacer (spec §H) through the hooks, against the emulator's rate limits and 429s.

Every test counts events (requests the emulator saw, with their statuses; what the deployment's
lane did; log records) and asserts no time: waits are real but short, and nothing here checks
how long anything took.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pluggy
import pytest

from polysync_azure_openai.cli.host import Platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator import faults as f
from polysync_azure_openai.http import pacer
from polysync_azure_openai.jobs import BATCH, CHAT, EMBEDDING
from polysync_azure_openai.results import RunResult

from ..conftest import api_key_platform, job, sp_platform

PROMPT = "Name a prime number."


def submit(pm: pluggy.PluginManager, platform: Platform, deployment: str = "gpt-4o") -> RunResult:
    result: RunResult = pm.hook.submit(
        platform=platform, job=job(CHAT, deployment, OpenAI_Max_Tokens="20"), parameters={"user_prompt": PROMPT}, run_key="k"
    )
    return result


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(index)`` on ``count`` threads released together; their results in index order."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = work(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def statuses(emu: Emulator, kind: str = "chat") -> list[int]:
    return [r.status for r in emu.requests if r.kind == kind]


def lane_of(emu: Emulator, deployment: str = "gpt-4o") -> pacer.Lane:
    return pacer.lane(emu.url, deployment)


def pause_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "HTTP 429" in r.getMessage()]


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll until ``condition`` holds (bounded, so a broken pacer fails instead of hanging)."""
    for _ in range(2000):
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("the condition never held")


# -- one 429 holds back every thread -----------------------------------------------------------


def test_one_429_pauses_every_thread_and_platform_on_the_deployment(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="polysync_azure_openai")
    platforms = [sp_platform(emu), api_key_platform(emu)]
    assert all(submit(pm, platform).status == "Success" for platform in platforms)  # tokens, connections
    lane = lane_of(emu)
    emu.clear_requests()
    emu.inject(f.throttled(retry_after_ms=2000, shape="retry-after-ms"), kind="chat", times=1)

    first: list[RunResult] = []
    thrower = threading.Thread(target=lambda: first.append(submit(pm, platforms[0])))
    thrower.start()
    wait_for(lambda: lane.stats.throttled == 1)
    # The others start during the pause, on both platforms: the lane holds every one of them.
    others = in_threads(7, lambda index: submit(pm, platforms[index % 2]))
    thrower.join(timeout=60)

    assert [r.status for r in first + others] == ["Success"] * 8
    # Exactly one 429 reached anyone: it came first, and nothing was sent until its wait passed.
    assert statuses(emu) == [429] + [200] * 8
    assert lane.stats.pauses == 1 and lane.stats.throttled == 1
    assert lane.stats.held >= 7 and lane.stats.refused == 0
    assert pause_warnings(caplog) == [
        f"Deployment 'gpt-4o' at {emu.url}: HTTP 429 (retry-after-ms: '2000', retry-after: '2'); every call to it waits 2.00 s"
    ]
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 1 and retries[0].levelno == logging.INFO  # the thread's own line, below WARNING


def test_429s_in_one_burst_make_one_pause_and_one_warning(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="polysync_azure_openai")
    platform = sp_platform(emu)
    emu.set_rate_limit("gpt-4o", requests=8, window=2)
    results = in_threads(16, lambda _: submit(pm, platform))
    assert [r.status for r in results] == ["Success"] * 16
    seen = statuses(emu)
    assert seen.count(200) == 16
    lane = lane_of(emu)
    # However many threads met a 429 in the burst, the deployment paused once and said so once.
    assert lane.stats.throttled == seen.count(429) >= 1
    assert lane.stats.pauses == 1 and len(pause_warnings(caplog)) == 1


# -- remaining-quota headers slow threads before any 429 ---------------------------------------


def test_remaining_headers_hold_calls_at_an_exhausted_budget_before_any_429(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """A window of an hour: what the headers say is left is all there is."""
    platform = sp_platform(emu)
    emu.set_rate_limit("gpt-4o", requests=10, window=3600)
    results = in_threads(8, lambda _: [submit(pm, platform) for _ in range(2)])
    outcomes = [r.status for pair in results for r in pair]
    assert outcomes.count("Success") == 10 and outcomes.count("Failed") == 6
    # The headers counted the budget down to zero, so one call (the probe) met the 429; the other
    # five were held, then refused unsent by the hour it asked for. Without the lane: six 429s.
    assert statuses(emu) == [200] * 10 + [429]
    lane = lane_of(emu)
    assert lane.stats.probes >= 1 and lane.stats.held >= 5 and lane.stats.refused == 5
    refused = [r.message for pair in results for r in pair if r.status == "Failed" and "[not sent:" in r.message]
    assert len(refused) == 5 and all("retry-after-ms: '" in m and "quota" in m for m in refused)


def test_a_learnt_window_keeps_calls_under_the_limit_with_no_429(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """Once two 429s named resets a window apart, the headers alone pace the calls."""
    platform = sp_platform(emu)
    emu.set_rate_limit("gpt-4o", requests=6, window=1.5)
    learning = in_threads(3, lambda _: [submit(pm, platform) for _ in range(6)])
    assert all(r.status == "Success" for calls in learning for r in calls)
    lane = lane_of(emu)
    assert 1 <= lane.stats.pauses and statuses(emu).count(429) == lane.stats.throttled
    pauses, held = lane.stats.pauses, lane.stats.held
    emu.clear_requests()

    paced = in_threads(3, lambda _: [submit(pm, platform) for _ in range(4)])

    assert all(r.status == "Success" for calls in paced for r in calls)
    assert statuses(emu) == [200] * 12  # two windows' worth, not one 429
    assert lane.stats.pauses == pauses and lane.stats.held > held


# -- an unlimited deployment is never held ----------------------------------------------------


def test_an_unlimited_deployment_is_never_held(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    results = in_threads(16, lambda _: [submit(pm, platform) for _ in range(4)])
    assert all(r.status == "Success" for calls in results for r in calls)
    embedded = pm.hook.submit(platform=platform, job=job(EMBEDDING, "embed-small"), parameters={"input": "x"}, run_key="k")
    assert embedded.status == "Success"
    for deployment, calls in (("gpt-4o", 64), ("embed-small", 1)):
        stats = lane_of(emu, deployment).stats
        assert (stats.admitted, stats.held, stats.pauses, stats.probes, stats.refused) == (calls, 0, 0, 0, 0)


# -- waits past the budget, malformed headers, daily quotas -----------------------------------


def test_a_daily_quota_fails_every_call_at_once_saying_so(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="polysync_azure_openai")
    platform = sp_platform(emu)
    emu.inject(f.throttled(86400, shape="retry-after", limit="call"), kind="chat", times=None)
    first = submit(pm, platform)
    later = in_threads(4, lambda _: submit(pm, platform))
    assert [r.status for r in [first, *later]] == ["Failed"] * 5
    assert (
        "Azure asked to wait 24 h (retry-after: '86400')" in first.message and "Please retry after 86400 seconds" in first.message
    )
    assert all("[not sent:" in r.message and "to wait 24 h" in r.message for r in later)
    assert all("daily quota" in r.message for r in [first, *later])
    assert statuses(emu) == [429]  # only the first call was sent; nobody waited a day
    assert pause_warnings(caplog) == [
        f"Deployment 'gpt-4o' at {emu.url}: HTTP 429 (retry-after: '86400'); Azure asks for 24 h: calls that cannot "
        "wait so long fail now, one call asks again in 60 s"
    ]


@pytest.mark.parametrize(
    "fault,retries,warning",
    [
        (f.Throttled(6, {}), "3", "HTTP 429 (no retry header); every call to it waits 0."),  # the backoff, jittered
        (f.throttled(60, shape="retry-after"), "0", "HTTP 429 (retry-after: '60'); every call to it waits 60 s"),
    ],
    ids=["no-retry-header", "a-minute"],
)
def test_the_pause_warning_names_what_azure_sent_and_the_wait(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture, fault: Any, retries: str, warning: str
) -> None:
    """A wait of up to a minute (MAX_PAUSE) holds every call; only a longer one fails calls at once."""
    caplog.set_level(logging.WARNING, logger="polysync_azure_openai")
    emu.inject(fault, kind="chat", times=1)
    submit(pm, sp_platform(emu, Max_Retries=retries))
    warnings = pause_warnings(caplog)
    assert len(warnings) == 1 and warnings[0].startswith(f"Deployment 'gpt-4o' at {emu.url}: {warning}"), warnings


@pytest.mark.parametrize(
    "headers,sent,attempts",
    [
        ({"retry-after": "-5"}, "retry-after: '-5'", 2),
        ({"retry-after": "soon"}, "retry-after: 'soon'", 2),
        ({"retry-after-ms": "abc", "retry-after": "nan"}, "retry-after-ms: 'abc', retry-after: 'nan'", 2),
        ({"retry-after-ms": "1e400"}, "retry-after-ms: '1e400'", 2),
        ({"x-ratelimit-reset-tokens": "-1"}, "x-ratelimit-reset-tokens: '-1'", 2),
        ({"retry-after": "7200"}, "retry-after: '7200'", 1),
        ({"retry-after-ms": "99999999999"}, "retry-after-ms: '99999999999'", 1),
        ({"x-ratelimit-reset-requests": "3h0m0s"}, "x-ratelimit-reset-requests: '3h0m0s'", 1),
    ],
    ids=["negative", "text", "ms-text-and-nan", "ms-infinite", "reset-negative", "hours", "ms-years", "reset-hours"],
)
def test_malformed_429_headers_never_wait_past_the_budget_and_are_named(
    pm: pluggy.PluginManager, emu: Emulator, headers: dict[str, str], sent: str, attempts: int
) -> None:
    emu.inject(f.Throttled(6, headers), kind="chat", times=None)
    result = submit(pm, sp_platform(emu, Max_Retries="1"))
    assert result.status == "Failed"
    assert "HTTP 429 429: Requests to the ChatCompletions_Create Operation" in result.message
    assert sent in result.message and "quota" in result.message
    # Unusable waits fall back to the backoff; waits of hours end the call at once.
    assert statuses(emu) == [429] * attempts
    if attempts == 1:
        assert "more than the" in result.message and "daily quota" in result.message
    else:
        assert "names no usable wait" in result.message


def test_a_status_read_over_quota_is_unknown_and_says_why(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(f.throttled(86400, shape="retry-after"), kind="batches.get", times=None)
    result = pm.hook.get_status(platform=sp_platform(emu), job=job(BATCH, "gpt-4o-batch::batch"), run_id="batch_abc")
    assert result.status == "Unknown"
    assert "Azure asked to wait 24 h" in result.message and "daily quota" in result.message
    assert statuses(emu, "batches.get") == [429]


def test_the_token_estimate_is_azures(pm: pluggy.PluginManager, emu: Emulator) -> None:
    # 20 characters -> 5 tokens, plus OpenAI Max Tokens 20: 25 a call; 3 calls fit in 75.
    emu.set_rate_limit("gpt-4o", tokens=75, window=3600)
    platform = sp_platform(emu)
    outcomes = [submit(pm, platform).status for _ in range(4)]
    assert outcomes == ["Success", "Success", "Success", "Failed"]
    # The fourth was held by the token headers (0 left) and probed once: one 429, no more.
    assert statuses(emu) == [200, 200, 200, 429]
    # The third fitted the 25 tokens left exactly, so it went as any call: only the fourth probed.
    assert lane_of(emu).stats.probes == 1


def test_retry_headers_that_echo_the_key_are_scrubbed_everywhere(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.inject(f.Throttled(6, {"retry-after": emu.api_key, "retry-after-ms": "5"}), kind="chat", times=None)
    result = submit(pm, api_key_platform(emu, Max_Retries="1"))
    assert result.status == "Failed" and "retry-after: '***'" in result.message
    assert emu.api_key not in result.message
    assert not [r for r in caplog.records if emu.api_key in r.getMessage()]
    assert any("retry-after: '***'" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_a_call_refused_by_another_calls_429_reports_that_429_and_the_attempts_it_sent(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    """A call backing off after three 503s finds its deployment paused by another call's 429 for a
    day: refused unsent, it reports that 429 (status, code, message, request id) and its own 3
    attempts. A call refused before it sent anything reports no attempts."""
    platform = sp_platform(emu)
    emu.inject(f.Status(503), kind="chat", times=2)
    # The third 503 asks for 8 s, so the two calls below are answered before the 4th attempt
    # even on a loaded machine (with the 1 to 2 s of plain backoff, a slow TLS handshake could
    # let the 4th attempt take the 429 meant for the second call).
    emu.inject(f.Status(503, headers={"Retry-After": "8"}), kind="chat", times=1)
    retrying: list[RunResult] = []
    thread = threading.Thread(target=lambda: retrying.append(submit(pm, platform)))
    thread.start()
    wait_for(lambda: statuses(emu) == [503] * 3)  # it now waits 8 s before its 4th attempt
    emu.inject(f.throttled(86400, shape="retry-after"), kind="chat", times=1)
    throttled = submit(pm, platform)
    at_once = submit(pm, platform)
    thread.join(timeout=60)

    assert statuses(emu) == [503] * 3 + [429]  # neither refused call was sent again
    found = re.search(r"\(request id ([^)]+)\)", throttled.message)
    assert found is not None
    azure_429 = throttled.message.split(" [")[0]  # "... failed: HTTP 429 429: Requests to the ... rate limit."
    assert "HTTP 429 429: Requests to the ChatCompletions_Create Operation" in azure_429
    not_sent = f"[not sent: Azure asked every caller of deployment 'gpt-4o' at {emu.url} to wait 24 h (retry-after: '86400'), "
    assert at_once.message.startswith(
        f"{azure_429} {not_sent}more than the 2 min this run may still wait] (request id {found[1]}). Fix: "
    )
    assert [r.status for r in retrying] == ["Failed"]
    assert retrying[0].message.startswith(f"{azure_429} {not_sent}more than the ")
    assert f"this run may still wait] (request id {found[1]}) after 3 attempts. Fix: " in retrying[0].message


# -- when a lane refuses a call, and the reason it gives ---------------------------------------
# Through the hooks a call has 2 min to wait, so a refusal with less left, or with the budget run
# out, would take minutes: the lane is driven directly here, on a clock the test sets.

BASE = "https://example.openai.azure.com"


class Clock:
    """The lane's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def paused_lane(sent: str, asked: float) -> tuple[pacer.Lane, Clock]:
    """A lane whose one call met a 429 asking for ``asked`` s (``sent`` its retry headers)."""
    lane, clock = pacer.Lane("gpt-4o", BASE), Clock()
    lane._clock = clock
    admission = lane.enter(lane.ticket(), 10, 120.0)
    assert isinstance(admission, pacer.Admission)
    lane.leave(admission, 429, {}, pacer.Throttle("429", "Rate limit reached.", "req-1", sent, asked))
    return lane, clock


@pytest.mark.parametrize(
    "sent,shown,may_wait,left",
    [
        ("retry-after: '90'", "retry-after: '90'", 0.5, "0.50 s"),
        ("", "no retry header", 0.0, "0.00 s"),
    ],
    ids=["less-than-a-second-left", "no-retry-header"],
)
def test_a_call_refused_during_a_pause_names_the_wait_asked_and_the_budget_it_has_left(
    sent: str, shown: str, may_wait: float, left: str
) -> None:
    lane, clock = paused_lane(sent, 90.0)
    clock.now += 10
    refusal = lane.enter(lane.ticket(), 10, may_wait)
    assert isinstance(refusal, pacer.Refusal) and refusal.throttle is not None and refusal.throttle.request_id == "req-1"
    assert refusal.reason == (
        f"not sent: Azure asked every caller of deployment 'gpt-4o' at {BASE} to wait 80 s ({shown}), "
        f"more than the {left} this run may still wait"
    )


def test_at_the_end_of_a_pause_a_call_behind_the_probe_is_refused_for_the_quota_not_the_pause() -> None:
    """The pause (60 s of the 300 s asked) is over at its last instant: one probe goes, and a call
    with no time left to wait for its answer is refused for the quota, having been held 0 s."""
    lane, clock = paused_lane("retry-after: '300'", 300.0)
    clock.now += pacer.MAX_PAUSE
    probe = lane.enter(lane.ticket(), 10, 0.0)
    assert isinstance(probe, pacer.Admission) and probe.probe
    refusal = lane.enter(lane.ticket(), 10, 0.0)
    assert isinstance(refusal, pacer.Refusal)
    assert refusal.reason == f"not sent: held 0.00 s for the quota of deployment 'gpt-4o' at {BASE}, as long as this run may wait"
    assert (lane.stats.probes, lane.stats.refused) == (1, 1)


def test_a_call_whose_budget_ends_as_the_asked_wait_ends_waits_out_the_pause_and_goes_as_the_probe() -> None:
    """Refused at once are the calls that cannot wait as long as Azure asked; one that can, to the
    instant, waits out the pause (60 s of the 90 s asked) and then asks Azure as the probe."""
    lane, clock = pacer.Lane("gpt-4o", BASE), Clock()
    lane._clock = clock
    first, other = lane.enter(lane.ticket(), 10, 120.0), lane.enter(lane.ticket(), 10, 120.0)
    assert isinstance(first, pacer.Admission) and isinstance(other, pacer.Admission)
    lane.leave(first, 429, {}, pacer.Throttle("429", "Rate limit reached.", "req-1", "retry-after: '90'", 90.0))
    clock.now += 10
    gate: list[pacer.Admission | pacer.Refusal] = []
    caller = threading.Thread(target=lambda: gate.append(lane.enter(lane.ticket(), 10, 80.0)))
    caller.start()
    wait_for(lambda: lane.stats.held == 1)
    with lane._lock:  # the caller waits on the lane's condition, which released the lock
        clock.now += pacer.MAX_PAUSE - 10
    lane.leave(other, 200, {})  # an answer wakes the head of the queue
    caller.join(timeout=10)
    assert len(gate) == 1 and isinstance(gate[0], pacer.Admission) and gate[0].probe
    assert gate[0].held == 50.0  # what the call's budget is charged for the wait
    assert (lane.stats.refused, lane.stats.probes) == (0, 1)


def test_a_longer_429_during_a_pause_is_the_wait_later_calls_are_refused_for() -> None:
    lane, clock = pacer.Lane("gpt-4o", BASE), Clock()
    lane._clock = clock
    first, second = lane.enter(lane.ticket(), 10, 120.0), lane.enter(lane.ticket(), 10, 120.0)
    assert isinstance(first, pacer.Admission) and isinstance(second, pacer.Admission)
    lane.leave(first, 429, {}, pacer.Throttle("429", "Rate limit reached.", "req-1", "retry-after-ms: '5000'", 5.0))
    daily = pacer.Throttle("429", "Daily quota reached.", "req-2", "retry-after: '86400'", 86400.0)
    lane.leave(second, 429, {}, daily)  # answered during the pause the first one started
    refusal = lane.enter(lane.ticket(), 10, 3.0)
    assert isinstance(refusal, pacer.Refusal) and refusal.throttle == daily
    assert "to wait 24 h (retry-after: '86400'), more than the 3.00 s this run may still wait" in refusal.reason
    assert (lane.stats.pauses, lane.stats.throttled) == (1, 2)


def test_a_call_waiting_for_the_probes_answer_is_refused_when_its_own_budget_runs_out() -> None:
    """Real clock: the probe's answer never comes, so nothing wakes the waiting call but its deadline."""
    lane = pacer.Lane("gpt-4o", BASE)
    first = lane.enter(lane.ticket(), 10, 120.0)
    assert isinstance(first, pacer.Admission)
    lane.leave(first, 429, {}, pacer.Throttle("429", "Rate limit reached.", "req-1", "retry-after-ms: '0'", 0.0))
    probe = lane.enter(lane.ticket(), 10, 120.0)
    assert isinstance(probe, pacer.Admission) and probe.probe
    gate: list[pacer.Admission | pacer.Refusal] = []
    caller = threading.Thread(target=lambda: gate.append(lane.enter(lane.ticket(), 10, 0.2)))
    caller.start()
    caller.join(timeout=10)
    still_waiting = caller.is_alive()
    lane.leave(probe, 200, {})  # lets the caller go, should it still be waiting
    caller.join(timeout=10)
    assert not still_waiting
    assert len(gate) == 1 and isinstance(gate[0], pacer.Refusal) and gate[0].reason.startswith("not sent: held ")
    assert lane.stats.refused == 1


@pytest.mark.parametrize(
    "status,headers",
    [(503, {}), (500, {"x-ratelimit-remaining-requests": "5"}), (None, None)],
    ids=["503", "500-with-remaining-headers", "no-answer"],
)
def test_a_probe_that_learnt_nothing_leaves_the_next_call_to_probe_again(
    status: int | None, headers: dict[str, str] | None
) -> None:
    """After a pause only an answer that says something (a 2xx, or a 4xx with remaining headers)
    lets the calls go together again; a 5xx (whatever its headers) or a lost answer hands the
    probe to the next call."""
    lane, clock = paused_lane("retry-after-ms: '5000'", 5.0)
    clock.now += 5
    probe = lane.enter(lane.ticket(), 10, 120.0)
    assert isinstance(probe, pacer.Admission) and probe.probe
    lane.leave(probe, status, headers)
    again = lane.enter(lane.ticket(), 10, 120.0)
    assert isinstance(again, pacer.Admission) and again.probe
    assert lane.stats.probes == 2


def test_the_requests_budget_counts_the_calls_still_in_flight() -> None:
    lane = pacer.Lane("gpt-4o", BASE)
    first = lane.enter(lane.ticket(), 10, 120.0)
    assert isinstance(first, pacer.Admission)
    lane.leave(first, 200, {"x-ratelimit-remaining-requests": "2"})
    in_flight = [lane.enter(lane.ticket(), 10, 120.0) for _ in range(2)]
    assert all(isinstance(admission, pacer.Admission) for admission in in_flight)
    # Two calls out, two requests left: a third waits for their answers (here: no time to wait).
    refusal = lane.enter(lane.ticket(), 10, 0.0)
    assert isinstance(refusal, pacer.Refusal) and refusal.reason.startswith("not sent: held ")
    assert (lane.stats.admitted, lane.stats.refused) == (3, 1)


def test_a_budget_that_covers_every_call_waiting_lets_them_all_go_unspread() -> None:
    """With the window known (two 429s named resets 2 s apart), calls are spread to the next reset
    only when fewer are left than waiting: two waiting calls with two requests left both go."""
    lane, clock = pacer.Lane("gpt-4o", BASE), Clock()
    lane._clock = clock

    def throttled(asked: float) -> None:
        admission = lane.enter(lane.ticket(), 10, 120.0)
        assert isinstance(admission, pacer.Admission)
        throttle = pacer.Throttle("429", "Rate limit reached.", None, f"retry-after-ms: '{asked * 1000:.0f}'", asked, exact=True)
        lane.leave(admission, 429, {}, throttle)

    throttled(2.0)  # resets at 1002
    clock.now = 1002.0
    probe = lane.enter(lane.ticket(), 10, 120.0)
    assert isinstance(probe, pacer.Admission) and probe.probe
    lane.leave(probe, 200, {"x-ratelimit-remaining-requests": "5"})
    clock.now = 1003.0
    throttled(1.0)  # resets at 1004: a window of 2 s

    gates: list[pacer.Admission | pacer.Refusal] = []
    callers = [threading.Thread(target=lambda: gates.append(lane.enter(lane.ticket(), 10, 120.0))) for _ in range(3)]
    for caller in callers:
        caller.start()
    wait_for(lambda: lane.stats.held == 3)
    with lane._lock:  # every caller waits on the lane's condition
        clock.now = 1004.0  # the pause ends: the first caller probes
    wait_for(lambda: len(gates) == 1)
    first = gates[0]
    assert isinstance(first, pacer.Admission) and first.probe
    lane.leave(first, 200, {"x-ratelimit-remaining-requests": "2"})
    for caller in callers:
        caller.join(timeout=3)
    went_together = len(gates) == 3
    with lane._lock:
        clock.now = 1006.0  # the next reset: lets a spread caller go, should there be one
    for caller in callers:
        caller.join(timeout=10)
    assert went_together
    assert [isinstance(gate, pacer.Admission) and not gate.probe for gate in gates[1:]] == [True, True]


def test_at_the_lane_bound_a_known_deployment_keeps_its_lane_and_only_a_new_one_starts_over() -> None:
    """A lane holds what Azure taught about its deployment (pauses, budgets): reaching MAX_LANES
    must not forget it for a deployment already known, only make room for a new one."""
    lanes = pacer._Lanes()
    first = lanes.get("https://a.example", "d0")
    for i in range(1, pacer.MAX_LANES):
        lanes.get("https://a.example", f"d{i}")
    assert lanes.get("https://a.example", "d0") is first  # at the bound, still its own lane
    lanes.get("https://a.example", "new")  # past the bound: the lanes start over
    assert lanes.get("https://a.example", "d0") is not first
