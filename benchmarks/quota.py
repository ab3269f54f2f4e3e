"""Throughput at the quota (spec §H): 640 chat runs against the emulator's rate limit.

The emulator runs in its own process (``python -m benchmarks.quota --serve``), holding one
deployment per scenario with the same limit, so that every scenario starts on a fresh window and
its 429s are counted by the server itself:

- the plugin, 32 threads x 20 runs, through a real PluginManager;
- the plugin in 4 worker processes x 8 threads x 20 runs, sharing one deployment;
- the openai SDK (``AzureOpenAI``, its default retries), 32 threads x 20 calls;
- then 64 threads on an unlimited deployment: the plugin against raw ``requests``, and the
  lane's counts (nothing held, no pause).

The limit is 80 requests and 3,840 estimated tokens per 2 s window; each call is estimated at 60
tokens (39 prompt characters / 4, rounded up, plus ``max_tokens`` 50), so 64 calls fit a window.
Windows follow each other from a scenario's first request, so the earliest any client can finish
N calls is ``ceil(N / 64) - 1`` windows after it starts: that is the floor. Runs and waits are
real; the last line compares both clients against the same floor.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from . import contenders as c
from .harness import REPO, Headline, Target, burst, note, title, trust

UNLIMITED = "gpt-4o"
DEPLOYMENTS = {"plugin": "quota-plugin", "processes": "quota-processes", "openai": "quota-openai"}
WINDOW = 2.0
REQUESTS_PER_WINDOW = 80
PER_WINDOW = 64  # calls the token limit lets through a window
THREADS, CALLS, PROCESSES = 32, 20, 4
UNLIMITED_THREADS, UNLIMITED_CALLS, UNLIMITED_ROUNDS = 64, 10, 3


def cost() -> int:
    """Azure's estimate of one benchmark call, as the plugin and the emulator both compute it."""
    from polysync_azure_openai.http.quota import estimated_tokens

    return estimated_tokens(c.CHAT_BODY)


# -- the emulator in its own process ------------------------------------------------------------


def serve(ca_cert: str, ca_key: str) -> int:
    """Child: an emulator with one deployment per scenario; JSON commands on stdin, answers on stdout."""
    import trustme

    from polysync_azure_openai.emulator import DEFAULT_DEPLOYMENTS, Deployment, Emulator

    ca = trustme.CA.from_pem(Path(ca_cert).read_bytes(), Path(ca_key).read_bytes())
    with Emulator(ca=ca) as emu:
        extra = [
            Deployment(name, "gpt-4o", model_version="2024-08-06", sku="GlobalStandard", capacity=50)
            for name in DEPLOYMENTS.values()
        ]
        emu.set_deployments([*DEFAULT_DEPLOYMENTS, *extra])
        names = ("url", "tenant_id", "client_id", "client_secret", "subscription_id", "resource_group", "resource_name")
        print(json.dumps({name: getattr(emu, name) for name in names}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "limit":
                emu.set_rate_limit(command["deployment"], requests=command["requests"], tokens=command["tokens"], window=WINDOW)
                answer: dict[str, Any] = {"ok": True}
            else:  # "count": the statuses the deployment answered with
                path = f"/openai/deployments/{command['deployment']}/chat/completions"
                seen = [r.status for r in emu.requests if r.path == path]
                answer = {str(status): seen.count(status) for status in set(seen)}
            print(json.dumps(answer), flush=True)
    return 0


class QuotaServer:
    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.quota", "--serve", trust().ca_path, trust().ca_key_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=trust().child_env(),
            text=True,
        )
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line:
            raise RuntimeError("the emulator process did not start")
        self.info = json.loads(line)
        self.server = SimpleNamespace(**self.info)

    def call(self, **command: Any) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._process.stdout.readline())
        return answer

    def limit(self, deployment: str, per_window: int) -> None:
        self.call(op="limit", deployment=deployment, requests=REQUESTS_PER_WINDOW, tokens=per_window * cost())

    def count(self, deployment: str) -> tuple[int, int]:
        """Requests the deployment answered, and how many of them were 429s."""
        seen = self.call(op="count", deployment=deployment)
        return sum(seen.values()), seen.get("429", 0)

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


# -- the clients --------------------------------------------------------------------------------


def plugin_job(deployment: str) -> Any:
    from polysync_azure_openai.cli.host import Job
    from polysync_azure_openai.jobs import CHAT

    attributes = {
        "Deployment Name": deployment,
        "Model Name": "gpt-4o",
        "OpenAI System Prompt": c.SYSTEM_PROMPT,
        "OpenAI Max Tokens": str(c.MAX_TOKENS),
        "OpenAI Temperature": "0",
    }
    return Job(job_type=CHAT, external_id=deployment, name=deployment, attributes=attributes)


class PluginRuns:
    """Chat runs through the host's hooks; failures counted, the first message kept."""

    def __init__(self, server: Any) -> None:
        from polysync_azure_openai.cli.host import plugin_manager

        self.submit = plugin_manager().hook.submit
        self.platform = c.sp_platform(server)
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self.run(UNLIMITED)  # a token and a connection, on quota nobody measures
        if self.failed:
            raise RuntimeError(f"the plugin's warm-up call failed: {self.failed[0]}")

    def run(self, deployment: str) -> None:
        result = self.submit(
            platform=self.platform, job=plugin_job(deployment), parameters={"user_prompt": c.USER_PROMPT}, run_key="k"
        )
        if result.status != "Success":
            with self._lock:
                self.failed.append(result.message)

    def lane(self, server: Any, deployment: str) -> dict[str, int]:
        import attrs

        from polysync_azure_openai.http import pacer

        return attrs.asdict(pacer.lane(server.url, deployment).stats)


def worker(args: dict[str, Any]) -> int:
    """Child: warm up, say ready, wait for go, run its share, print what happened."""
    # As in the parent (benchmarks/__main__.py): log records formatted as a host would, then dropped.
    handler = logging.StreamHandler(open(os.devnull, "w"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    server = SimpleNamespace(**args["server"])
    runs = PluginRuns(server)
    print("ready", flush=True)
    sys.stdin.readline()
    burst(lambda: runs.run(args["deployment"]), args["threads"], args["calls"])
    outcome = {"failed": len(runs.failed), "first": runs.failed[:1], "lane": runs.lane(server, args["deployment"])}
    print(json.dumps(outcome), flush=True)
    return 0


def openai_runs(server: Any, token: str) -> tuple[Any, list[str]]:
    import openai

    client = c.openai_client(server, token)  # max_retries left at the SDK's default
    failed: list[str] = []
    lock = threading.Lock()

    def run(deployment: str) -> None:
        try:
            client.chat.completions.create(
                model=deployment, messages=c.CHAT_BODY["messages"], max_tokens=c.MAX_TOKENS, temperature=c.TEMPERATURE
            )
        except openai.APIError as exc:
            with lock:
                failed.append(f"{type(exc).__name__}: {exc}"[:300])

    run(UNLIMITED)
    if failed:
        raise RuntimeError(f"the openai SDK's warm-up call failed: {failed[0]}")
    return run, failed


# -- the scenarios ------------------------------------------------------------------------------


def floor_seconds(runs: int, per_window: int) -> float:
    return (math.ceil(runs / per_window) - 1) * WINDOW


def in_processes(
    quota: QuotaServer, deployment: str, processes: int, threads: int, calls: int, per_window: int
) -> tuple[float, list[dict[str, Any]]]:
    args = {"server": quota.info, "deployment": deployment, "threads": threads, "calls": calls}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.quota", "--worker", json.dumps(args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=trust().child_env(),
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for process in workers:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker process did not start")
        quota.limit(deployment, per_window)
        start = time.perf_counter()
        for process in workers:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = [json.loads(process.stdout.readline()) for process in workers if process.stdout is not None]
        elapsed = time.perf_counter() - start
    finally:
        for process in workers:
            if process.stdin:
                process.stdin.close()
            process.wait(timeout=60)
    return elapsed, outcomes


def row(name: str, runs: int, failed: int, answered: int, throttled: int, elapsed: float, floor: float) -> str:
    share = 100 * throttled / answered if answered else 0.0
    return (
        f"   {name:<34} {runs:>5} {failed:>7} {answered:>9} {throttled:>6} {share:>6.1f}% "
        f"{elapsed:>9.2f} s {elapsed / floor:>7.2f}x"
    )


def run(quick: bool) -> list[Any]:
    threads, calls, per_window = (16, 10, 32) if quick else (THREADS, CALLS, PER_WINDOW)
    runs = threads * calls
    floor = floor_seconds(runs, per_window)
    title(
        f"Throughput at the quota: {runs} chat runs, {per_window} calls ({per_window * cost():,} estimated tokens, "
        f"{REQUESTS_PER_WINDOW} requests) per {WINDOW:g} s window; floor {floor:.1f} s"
    )
    quota = QuotaServer()
    try:
        server = quota.server
        token = c.fetch_token(server)
        plugin = PluginRuns(server)
        sdk_run, sdk_failed = openai_runs(server, token)

        quota.limit(DEPLOYMENTS["plugin"], per_window)
        plugin_elapsed, _ = burst(lambda: plugin.run(DEPLOYMENTS["plugin"]), threads, calls)
        plugin_answered, plugin_429 = quota.count(DEPLOYMENTS["plugin"])
        plugin_failed, plugin_lane = len(plugin.failed), plugin.lane(server, DEPLOYMENTS["plugin"])

        procs_elapsed, outcomes = in_processes(
            quota, DEPLOYMENTS["processes"], PROCESSES, threads // PROCESSES, calls, per_window
        )
        procs_answered, procs_429 = quota.count(DEPLOYMENTS["processes"])
        procs_failed = sum(o["failed"] for o in outcomes)

        quota.limit(DEPLOYMENTS["openai"], per_window)
        sdk_elapsed, _ = burst(lambda: sdk_run(DEPLOYMENTS["openai"]), threads, calls)
        sdk_answered, sdk_429 = quota.count(DEPLOYMENTS["openai"])

        print(
            f"   {'client':<34} {'runs':>5} {'failed':>7} {'requests':>9} {'429s':>6} {'429 %':>7} {'elapsed':>11} {'floor':>8}"
        )
        print(row(f"plugin, {threads} threads", runs, plugin_failed, plugin_answered, plugin_429, plugin_elapsed, floor))
        print(
            row(
                f"plugin, {PROCESSES} processes x {threads // PROCESSES} threads",
                runs,
                procs_failed,
                procs_answered,
                procs_429,
                procs_elapsed,
                floor,
            )
        )
        print(row(f"openai SDK, {threads} threads", runs, len(sdk_failed), sdk_answered, sdk_429, sdk_elapsed, floor))
        note(f"plugin lane: {plugin_lane}")
        note("lanes of the worker processes: " + "; ".join(str(o["lane"]) for o in outcomes))
        for label, messages in (
            ("plugin", plugin.failed),
            ("processes", [m for o in outcomes for m in o["first"]]),
            ("openai SDK", sdk_failed),
        ):
            if messages:
                note(f"first {label} failure: {messages[0][:300]}")

        unlimited = unlimited_cost(server, token, plugin, 4 if quick else UNLIMITED_CALLS, 1 if quick else UNLIMITED_ROUNDS)
    finally:
        quota.close()

    plugin_ratio, procs_ratio, sdk_ratio = plugin_elapsed / floor, procs_elapsed / floor, sdk_elapsed / floor
    plugin_share = 100 * plugin_429 / plugin_answered
    sdk_share = 100 * sdk_429 / sdk_answered if sdk_answered else 0.0
    headline = (
        f"quota: plugin {plugin_ratio:.2f}x floor, {plugin_failed} failed, {plugin_share:.1f}% 429; "
        f"openai SDK {sdk_ratio:.2f}x floor, {len(sdk_failed)} failed, {sdk_share:.1f}% 429"
    )
    note(headline)
    return [
        Target("quota", f"plugin, {threads} threads: time / floor", plugin_ratio, 1.15),
        Target("quota", f"plugin, {threads} threads: failed runs", plugin_failed, 0, fmt="{:.0f}"),
        Target("quota", f"plugin, {threads} threads: 429s / requests", plugin_share, 5.0, fmt="{:.1f}%"),
        Target("quota", f"plugin, {PROCESSES} processes: time / floor", procs_ratio, 1.3),
        Target("quota", f"plugin, {PROCESSES} processes: failed runs", procs_failed, 0, fmt="{:.0f}"),
        *unlimited,
        Headline(headline),
    ]


def unlimited_cost(server: Any, token: str, plugin: PluginRuns, calls: int, rounds: int) -> list[Target]:
    """64 threads on a deployment without a limit: the lane holds nothing and costs nothing."""
    before = plugin.lane(server, UNLIMITED)
    raw = c.requests_call(server, "chat", token, pool=UNLIMITED_THREADS)
    contenders = {"plugin submit": lambda: plugin.run(UNLIMITED), "requests.Session (pool 64)": raw}
    for call in contenders.values():  # the connections this level needs
        burst(call, UNLIMITED_THREADS, 1)
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for index in range(rounds):
        names = list(contenders)[index % 2 :] + list(contenders)[: index % 2]
        for name in names:
            seconds[name].append(burst(contenders[name], UNLIMITED_THREADS, calls)[0])
    after = plugin.lane(server, UNLIMITED)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    ratio = median["plugin submit"] / median["requests.Session (pool 64)"]
    total = UNLIMITED_THREADS * calls
    print(f"\n   {UNLIMITED_THREADS} threads x {calls} calls on '{UNLIMITED}' (no limit), median of {rounds} round(s):")
    for name, value in median.items():
        print(f"   {name:<34} {total / value:>8.0f} calls/s")
    held, pauses = after["held"] - before["held"], after["pauses"] - before["pauses"]
    admitted = after["admitted"] - before["admitted"]
    note(f"plugin / requests wall time: {ratio:.2f}x; the lane held {held} of {admitted} calls and paused {pauses} time(s)")
    return [Target("quota", f"unlimited, {UNLIMITED_THREADS} threads: calls held by the lane", held, 0, fmt="{:.0f}")]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        sys.exit(serve(sys.argv[2], sys.argv[3]))
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(worker(json.loads(sys.argv[2])))
    sys.exit("usage: python -m benchmarks.quota --serve CA_CERT CA_KEY | --worker JSON")
