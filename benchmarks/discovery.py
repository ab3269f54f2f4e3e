"""Discovery: one host ``import_jobs`` over 1,000 deployments in 10 ARM pages.

The three sibling job types must share one listing (10 page requests, not 30). Client CPU is the
calling thread's CPU time (``time.thread_time``): the plugin lists synchronously on the host's
thread, and the in-process server's threads are not counted. The reference is a raw
``requests`` walk of the same pages (GET, ``.json()``, follow ``nextLink``) that classifies
nothing, i.e. the floor of any client.
"""

from __future__ import annotations

import time
from typing import Any

from . import contenders as c
from .harness import ARM_SCOPE, Result, Target, local_server, note, server_cost_line, table, title

DEPLOYMENTS = 1000
PAGE_SIZE = 100
PLUGIN = "plugin import_jobs (3 siblings)"
RAW = "requests: walk the 10 pages"


def run(quick: bool) -> list[Target]:
    from polysync_azure_openai.cli.host import import_all, plugin_manager

    title(f"Discovery: import_jobs over {DEPLOYMENTS:,} deployments in {DEPLOYMENTS // PAGE_SIZE} pages")
    rounds = 3 if quick else 15
    with local_server(deployments=DEPLOYMENTS, page_size=PAGE_SIZE) as server:
        pm = plugin_manager()
        platform = c.sp_platform(server)
        token = c.fetch_token(server, ARM_SCOPE)
        raw = _raw_listing(server, token)

        def plugin() -> list[Any]:
            return import_all(pm, platform)

        jobs = plugin()  # warm-up: ARM token and session
        raw()
        wall = {PLUGIN: Result(PLUGIN), RAW: Result(RAW)}
        cpu = {PLUGIN: Result(PLUGIN), RAW: Result(RAW)}
        pages: list[int] = []
        before = server.stats()
        for index in range(rounds):
            order = [(PLUGIN, plugin), (RAW, raw)]
            for name, call in order if index % 2 == 0 else order[::-1]:
                ahead = server.stats()["requests"].get("arm.deployments", 0)
                start_cpu, start = time.thread_time(), time.perf_counter()
                call()
                wall[name].samples.append(time.perf_counter() - start)
                cpu[name].samples.append(time.thread_time() - start_cpu)
                if name == PLUGIN:
                    pages.append(server.stats()["requests"].get("arm.deployments", 0) - ahead)
        after = server.stats()
    print("   wall time")
    table(list(wall.values()), reference=RAW, unit="ms", scale=1e3)
    print("   client CPU (calling thread)")
    table(list(cpu.values()), reference=RAW, unit="ms", scale=1e3)
    note(server_cost_line(before, after))
    kinds: dict[str, int] = {}
    for job in jobs:
        kinds[job.job_type] = kinds.get(job.job_type, 0) + 1
    note(f"jobs per import: {len(jobs)} ({', '.join(f'{n} {k}' for k, n in kinds.items())})")
    note(f"page requests per import_jobs call: {sorted(set(pages))} (10 = one listing shared by the 3 siblings)")
    worst_pages = max(pages)
    return [
        Target("discovery", "ARM page requests per import_jobs (max)", worst_pages, DEPLOYMENTS // PAGE_SIZE, fmt="{:.0f}"),
        Target("discovery", "client CPU per import_jobs (median)", cpu[PLUGIN].median, 0.5, fmt="{:.3f} s"),
    ]


def _raw_listing(server: Any, token: str) -> Any:
    import requests

    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    first = (
        f"{server.url}/subscriptions/{server.subscription_id}/resourceGroups/{server.resource_group}"
        f"/providers/Microsoft.CognitiveServices/accounts/{server.resource_name}/deployments?api-version=2023-05-01"
    )

    def walk() -> object:
        items: list[Any] = []
        url: str | None = first
        while url:
            response = session.get(url, headers=headers, timeout=(10, 120))
            response.raise_for_status()
            payload = response.json()
            items.extend(payload["value"])
            url = payload.get("nextLink")
        return items

    return walk
