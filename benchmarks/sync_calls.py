"""Chat and embedding calls on a zero-latency keep-alive server: plugin vs requests vs openai.

The server runs in this process (its connection threads share the GIL with the client, and its
measured CPU per request is printed so a reader can subtract it). A fourth row, requests with
``trust_env=False``, shows the floor the plugin's own session starts from: a default session
looks proxy and CA settings up in the environment on every request.
"""

from __future__ import annotations

from typing import Any

from . import contenders as c
from .harness import Target, interleave, local_server, note, server_cost_line, table, title

PLUGIN = "plugin submit (PluginManager)"
REQUESTS = "requests.Session (default)"
REQUESTS_NO_ENV = "requests.Session (trust_env=False)"
OPENAI = "openai.AzureOpenAI"

LIMITS = {
    "chat": {"vs requests": 1.0, "vs openai": 0.5},
    "embeddings": {"vs requests": 1.0, "vs openai": 0.3},
}


def run(kind: str, quick: bool) -> list[Target]:
    label = "Sync chat call" if kind == "chat" else "Embeddings, 1536-dim float response"
    title(f"{label} (zero-latency server, keep-alive)")
    rounds = 300 if quick else 3000
    with local_server() as server:
        token = c.fetch_token(server)
        calls = {
            PLUGIN: c.plugin_call(server, kind),
            REQUESTS: c.requests_call(server, kind, token),
            REQUESTS_NO_ENV: c.requests_call(server, kind, token, trust_env=False),
            OPENAI: c.openai_call(server, kind, token),
        }
        # The plugin's token is fetched during warm-up: what follows is the steady state.
        for call in calls.values():
            call()
        server.reset()
        before = server.stats()
        results = interleave(calls, rounds=rounds, warmup=50 if quick else 300, max_seconds=20 if quick else 60)
        after = server.stats()
        table(list(results.values()), reference=REQUESTS)
        note(server_cost_line(before, after))
        note(c.same_bodies(server, kind))
        tokens = server.token_requests()
        note(f"token requests during the timed rounds: {tokens} (the plugin reuses its cached token)")
    plugin = results[PLUGIN].median
    name = "chat" if kind == "chat" else "embeddings"
    return [
        Target(name, "plugin / raw requests (median)", plugin / results[REQUESTS].median, LIMITS[kind]["vs requests"]),
        Target(name, "plugin / openai SDK (median)", plugin / results[OPENAI].median, LIMITS[kind]["vs openai"]),
    ]


def run_chat(quick: bool) -> list[Any]:
    return run("chat", quick)


def run_embeddings(quick: bool) -> list[Any]:
    return run("embeddings", quick)
