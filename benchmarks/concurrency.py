"""Concurrency: 1, 4, 16 and 64 threads on one platform at 50 ms server latency.

The server runs in its own process (``python -m benchmarks.fastserver --latency 0.05``) so that
its threads never hold this process's GIL; it sleeps 50 ms before each data-plane answer. Each
thread makes the same number of calls; speed-up is throughput at N threads over throughput at
one thread, per contender (ideal: N). Each level is warmed up first (connections opened), and
the contenders take turns level by level. ``requests`` gets a session with 64 pooled connections
(its default of 10 would discard connections above 10 threads). A fourth row, ``http.client``
with a stack of idle connections, is the ceiling: what the machine and the server allow a client
that costs almost nothing.
"""

from __future__ import annotations

import statistics

from . import contenders as c
from .harness import RemoteServer, Target, burst, note, title

LEVELS = (1, 4, 16, 64)
LATENCY = 0.05
PLUGIN = "plugin submit"
REQUESTS = "requests.Session (pool 64)"
OPENAI = "openai.AzureOpenAI"
FLOOR = "http.client (minimal client)"


def run(quick: bool) -> list[Target]:
    calls = 6 if quick else 20
    rounds = 1 if quick else 3
    title(
        f"Concurrency at {LATENCY * 1000:.0f} ms server latency, one platform "
        f"({calls} calls per thread, server in its own process)"
    )
    with RemoteServer(latency=LATENCY) as server:
        token = c.fetch_token(server)
        calls_by_name = {
            PLUGIN: c.plugin_call(server, "chat"),
            REQUESTS: c.requests_call(server, "chat", token, pool=64),
            OPENAI: c.openai_call(server, "chat", token),
            FLOOR: c.httpclient_call(server, "chat", token),
        }
        throughput: dict[tuple[str, int], list[float]] = {}
        cpu_per_call: dict[tuple[str, int], list[float]] = {}
        before = server.stats()
        names = list(calls_by_name)
        for level in LEVELS:
            for name in names:  # open the connections this level needs
                burst(calls_by_name[name], level, 1)
            for index in range(rounds):
                shift = index % len(names)
                for name in names[shift:] + names[:shift]:
                    elapsed, used = burst(calls_by_name[name], level, calls)
                    throughput.setdefault((name, level), []).append(level * calls / elapsed)
                    cpu_per_call.setdefault((name, level), []).append(used / (level * calls))
        after = server.stats()

    print(f"   {'contender':<28}" + "".join(f"{f'{n} thr':>10}" for n in LEVELS) + f"{'CPU/call @64':>14}")
    speedups: dict[str, dict[int, float]] = {}
    for name in names:
        base = statistics.median(throughput[(name, 1)])
        speedups[name] = {n: statistics.median(throughput[(name, n)]) / base for n in LEVELS}
        cells = "".join(f"{speedups[name][n]:>9.1f}x" for n in LEVELS)
        cpu = statistics.median(cpu_per_call[(name, 64)]) * 1e6
        print(f"   {name:<28}{cells}{cpu:>11.0f} µs")
    note("cells: throughput at N threads / throughput at 1 thread (ideal = N); median of rounds")
    note(f"'{FLOOR}' is no contender: a near-minimal client, it shows how far this machine and server let any client scale")
    single = {name: 1 / statistics.median(throughput[(name, 1)]) * 1000 for name in names}
    note("one-thread latency per call: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in single.items()))
    requests_served = after["total"] - before["total"]
    process_cpu = after["process_cpu_seconds"] - before["process_cpu_seconds"]
    note(
        f"server: benchmarks/fastserver.py in its own process: {process_cpu / requests_served * 1e6:.0f} µs CPU/request "
        f"(whole process) over {requests_served} requests"
    )
    note(
        f"plugin / openai speed-up at 64 threads: {speedups[PLUGIN][64] / speedups[OPENAI][64]:.2f}x; "
        f"plugin / requests: {speedups[PLUGIN][64] / speedups[REQUESTS][64]:.2f}x"
    )
    return [
        Target("concurrency", "plugin speed-up, 16 threads vs 1", speedups[PLUGIN][16], 15.0, at_most=False, fmt="{:.1f}x"),
        Target("concurrency", "plugin speed-up, 64 threads vs 1", speedups[PLUGIN][64], 55.0, at_most=False, fmt="{:.1f}x"),
    ]
