"""L1: a per-process LRU bounded by bytes, not entries, with a TTL per entry.

Answers range from a few hundred bytes to megabytes, so a count bound says nothing about memory.
Expired entries are dropped when they are met (a get) or when they reach the cold end; nothing
scans the table. The event loop reads and writes it; a purge from admin (a worker thread) clears
it, hence the lock (uncontended, it costs ~0.1 µs).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from apps.proxy.cache.stored import CachedAnswer


class HasSize(Protocol):
    @property
    def size(self) -> int:
        """Bytes this entry holds, its bookkeeping included."""


V = TypeVar("V", bound=HasSize)


class ByteLRU(Generic[V]):
    """Holds anything that knows its size: answers here, completed responses in ``apps.proxy.idempotency``."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._clock = clock
        self._entries: OrderedDict[str, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            answer, expires_at = entry
            if self._clock() >= expires_at:
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return answer

    def fits(self, size: int) -> bool:
        """Whether an entry of ``size`` bytes is kept: one larger than a quarter of the whole cache is not."""
        return size * 4 <= self.max_bytes

    def put(self, key: str, answer: V, ttl_s: float) -> None:
        """Store for ``ttl_s``, if it ``fits()``."""
        if not self.fits(answer.size) or ttl_s <= 0:
            return
        with self._lock:
            if key in self._entries:
                self._remove(key)
            self._entries[key] = (answer, self._clock() + ttl_s)
            self.size += answer.size
            while self.size > self.max_bytes:
                self._remove(next(iter(self._entries)))

    def discard(self, key: str) -> bool:
        """Remove the entry if there is one (expired or not); whether there was."""
        with self._lock:
            if key not in self._entries:
                return False
            self._remove(key)
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size = 0

    def _remove(self, key: str) -> None:
        answer, _ = self._entries.pop(key)
        self.size -= answer.size


_local: ByteLRU[CachedAnswer] | None = None


def local_cache() -> ByteLRU[CachedAnswer]:
    """This process's L1, sized by EDGE_CACHE_L1_MAX_BYTES on first use."""
    global _local
    if _local is None:
        from django.conf import settings

        _local = ByteLRU(settings.EDGE_CACHE_L1_MAX_BYTES)
    return _local
