"""A small bounded, thread-safe cache for per-platform objects.

Sessions, credentials and parsed configurations are cached per platform so that the host's
thousands of runs a day do not rebuild them. The host is long-lived and multi-tenant, so the
cache is bounded (least recently used goes first), forgets entries idle for a while, and is
emptied in a forked child, where inherited sockets and locks must not be reused.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

_ALL: weakref.WeakSet[BoundedCache[object]] = weakref.WeakSet()


class BoundedCache(Generic[V]):
    """Least-recently-used map with an idle timeout; ``get_or_create`` builds once per key."""

    def __init__(
        self,
        name: str,
        *,
        max_size: int = 64,
        idle_seconds: float = 3600.0,
        on_evict: Callable[[V], None] | None = None,
    ) -> None:
        self.name = name
        self.max_size = max_size
        self.idle_seconds = idle_seconds
        self._on_evict = on_evict
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        _ALL.add(self)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        # Keys may hold secrets (an identity's configuration): never show them.
        return f"<BoundedCache {self.name} size={len(self._items)}/{self.max_size}>"

    def __len__(self) -> int:
        return len(self._items)

    def get_or_create(self, key: Hashable, factory: Callable[[], V]) -> V:
        now = time.monotonic()
        with self._lock:
            hit = self._fresh_locked(key, now)
            if hit is not None:
                return hit[1]
        # Built outside the lock: a factory may be slow (a TLS session, a credential) and must
        # not block other platforms. Two threads racing on one new key keep the first value.
        value = factory()
        evicted: list[V] = []
        with self._lock:
            hit = self._fresh_locked(key, now)
            if hit is not None:
                evicted.append(value)
                value = hit[1]
            else:
                evicted.extend(self._expire_locked(now))
                self._items[key] = (now, value)
                while len(self._items) > self.max_size:
                    evicted.append(self._items.popitem(last=False)[1][1])
        for old in evicted:
            self._evict(old)
        return value

    def _fresh_locked(self, key: Hashable, now: float) -> tuple[float, V] | None:
        hit = self._items.get(key)
        if hit is None or now - hit[0] >= self.idle_seconds:
            return None
        self._items[key] = (now, hit[1])
        self._items.move_to_end(key)
        return hit

    def clear(self) -> None:
        with self._lock:
            values = [v for _, v in self._items.values()]
            self._items.clear()
        for value in values:
            self._evict(value)

    def _expire_locked(self, now: float) -> list[V]:
        idle = [k for k, (used, _) in self._items.items() if now - used >= self.idle_seconds]
        return [self._items.pop(k)[1] for k in idle]

    def _evict(self, value: V) -> None:
        if self._on_evict is not None:
            self._on_evict(value)

    def _forget_after_fork(self) -> None:
        # The child must not close the parent's sockets, only drop its references to them.
        self._lock = threading.Lock()
        self._items = OrderedDict()


def _after_fork_in_child() -> None:
    for cache in list(_ALL):
        cache._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
