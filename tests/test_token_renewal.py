"""Workers that get a 401 at the same time renew the token once between them (azure-core's policy).

A fault holds the workers' requests until all of them have arrived, so that every worker is
refused with the same revoked token whatever the thread timing: the tests are deterministic.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import attrs
import pluggy

from polysync_azure_openai.cli.host import Platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator import faults as f
from polysync_azure_openai.emulator.server import Exchange
from polysync_azure_openai.jobs import CHAT
from polysync_azure_openai.results import RunResult

from .conftest import job, sp_platform

WORKERS = 4


@attrs.define
class Together:
    """Hold each matching request until ``count`` of them have arrived, then handle them as usual."""

    count: int
    arrived: int = 0
    lock: threading.Condition = attrs.field(factory=threading.Condition)
    name = "together"

    def apply(self, exchange: Exchange) -> None:
        with self.lock:
            self.arrived += 1
            self.lock.notify_all()
            self.lock.wait_for(lambda: self.arrived >= self.count, timeout=30)
        exchange.send(exchange.respond())


def chats_at_once(pm: pluggy.PluginManager, platform: Platform) -> list[RunResult]:
    def chat(_: int) -> RunResult:
        return pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")

    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(chat, range(WORKERS)))


def revoked_and_refused_together(pm: pluggy.PluginManager, emu: Emulator, platform: Platform) -> None:
    """Every worker holds the cached token; it is revoked; the next WORKERS chats are all refused."""
    assert [r.status for r in chats_at_once(pm, platform)] == ["Success"] * WORKERS
    emu.revoke_tokens()
    emu.inject(Together(WORKERS), kind="chat", times=WORKERS)


def refusals(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.kind == "chat" and r.status == 401)


def token_answers(emu: Emulator) -> list[int]:
    return [r.status for r in emu.requests if r.kind == "entra.token"]


def test_concurrent_401s_renew_the_token_once(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    revoked_and_refused_together(pm, emu, platform)
    results = chats_at_once(pm, platform)
    assert [r.status for r in results] == ["Success"] * WORKERS
    assert refusals(emu) == WORKERS
    assert token_answers(emu) == [200, 200]  # the first token, then one renewal: the others took it


def test_when_one_renewal_fails_the_next_worker_fetches_its_own(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu, Max_Retries="0")
    revoked_and_refused_together(pm, emu, platform)
    emu.inject(f.Status(503), kind="entra.token", times=1)
    results = chats_at_once(pm, platform)
    assert sorted(r.status for r in results) == ["Failed"] + ["Success"] * (WORKERS - 1)
    assert refusals(emu) == WORKERS
    assert token_answers(emu) == [200, 503, 200]  # the failed renewal, then one for the other three


def test_a_failed_renewal_drops_the_refused_token(pm: pluggy.PluginManager, emu: Emulator) -> None:
    # The next run fetches a new token first instead of sending the refused one once more.
    platform = sp_platform(emu, Max_Retries="0")
    chat = job(CHAT, "gpt-4o")
    assert pm.hook.submit(platform=platform, job=chat, parameters={"user_prompt": "hi"}, run_key="k").status == "Success"
    emu.revoke_tokens()
    # The connection to Entra is lost (a 5xx would be remembered by MSAL's throttling for a while).
    emu.inject(f.ResetBeforeResponse(handled=False), kind="entra.token", times=1)
    assert pm.hook.submit(platform=platform, job=chat, parameters={"user_prompt": "hi"}, run_key="k").status == "Failed"
    after = pm.hook.submit(platform=platform, job=chat, parameters={"user_prompt": "hi"}, run_key="k")
    assert after.status == "Success", after.message
    assert [r.status for r in emu.requests if r.kind == "chat"] == [200, 401, 200]
    assert token_answers(emu) == [200, 0, 200]  # 0: no answer
