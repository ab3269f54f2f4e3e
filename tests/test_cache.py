"""Per-platform caches: bounded, forget idle entries, emptied in a forked child."""

from __future__ import annotations

import os

import pytest

from polysync_azure_openai.cache import BoundedCache


def test_least_recently_used_goes_first_and_evicted_values_are_closed() -> None:
    closed: list[str] = []
    cache: BoundedCache[str] = BoundedCache("t", max_size=2, on_evict=closed.append)
    cache.get_or_create("a", lambda: "A")
    cache.get_or_create("b", lambda: "B")
    assert cache.get_or_create("a", lambda: "A2") == "A"  # hit, and now most recent
    cache.get_or_create("c", lambda: "C")
    assert closed == ["B"] and len(cache) == 2
    assert cache.get_or_create("b", lambda: "B2") == "B2"


def test_idle_entries_are_rebuilt() -> None:
    closed: list[str] = []
    cache: BoundedCache[str] = BoundedCache("t", idle_seconds=0.0, on_evict=closed.append)
    cache.get_or_create("a", lambda: "A")
    assert cache.get_or_create("a", lambda: "A2") == "A2"
    assert closed == ["A"]


def test_factory_runs_once_per_key() -> None:
    calls = []
    cache: BoundedCache[int] = BoundedCache("t")
    for _ in range(5):
        cache.get_or_create("k", lambda: calls.append(1) or len(calls))
    assert calls == [1]


def test_repr_never_shows_keys() -> None:
    cache: BoundedCache[str] = BoundedCache("t")
    cache.get_or_create(("secret-value",), lambda: "x")
    assert "secret-value" not in repr(cache)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_forked_child_starts_with_empty_caches() -> None:
    from polysync_azure_openai.http import _CLIENTS  # the per-platform HTTP clients

    cache: BoundedCache[str] = BoundedCache("t")
    cache.get_or_create("k", lambda: "parent")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what it inherited, then leave at once
        os.close(read)
        os.write(write, f"{len(cache)},{len(_CLIENTS)},{cache.get_or_create('k', lambda: 'child')}".encode())
        os._exit(0)
    os.close(write)
    report = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    assert report == "0,0,child"
    assert cache.get_or_create("k", lambda: "other") == "parent"
