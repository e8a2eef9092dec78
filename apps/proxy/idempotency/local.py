"""This process's idempotency state: the claims it holds, who waits on them, and what completed.

Every claim this process holds has a ``Flight`` here, whichever store holds the claim itself (Redis or
this process), so a repeat arriving in this process waits on a future instead of polling Redis.
Completed responses go into a byte-bounded LRU (EDGE_IDEMPOTENCY_LOCAL_MAX_BYTES) for
EDGE_IDEMPOTENCY_TTL_S: it is the store itself while Redis is not configured or unusable, and a copy
of what this process answered while it is, so a Redis outage does not make a repeat sent to the same
process run again.

Uvicorn runs one event loop per process, but nothing here counts on it: state changes under one
lock, and each waiter is woken on its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from apps.proxy.cache.lru import ByteLRU
from apps.proxy.idempotency.stored import Completed, StoredResponse

Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[StoredResponse | None]"]


class Flight:
    """A claim this process holds, until it lands: with the response, or with None when released.

    Its state changes only under ``LocalStore``'s lock.
    """

    __slots__ = ("fingerprint", "landed", "result", "waiters")

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.waiters: list[Waiter] = []
        self.landed = False
        self.result: StoredResponse | None = None


@dataclass(frozen=True, slots=True)
class Taken:
    """``LocalStore.claim()``'s answer when the caller now holds the key: its new flight."""

    flight: Flight


class LocalStore:
    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.records: ByteLRU[Completed] = ByteLRU(max_bytes, clock)
        self._flights: dict[str, Flight] = {}
        self._lock = threading.Lock()

    def flight(self, key: str) -> Flight | None:
        return self._flights.get(key)

    def claim(self, key: str, fingerprint: str) -> Completed | Flight | Taken:
        """In one step: the completed record, else the flight in progress, else a new flight the caller holds."""
        with self._lock:
            if (completed := self.records.get(key)) is not None:
                return completed
            return self._start(key, fingerprint)

    def start(self, key: str, fingerprint: str) -> Flight | Taken:
        """The flight in progress, else a new one the caller holds (its claim is in Redis)."""
        with self._lock:
            return self._start(key, fingerprint)

    def complete(self, key: str, flight: Flight, completed: Completed, ttl_s: float) -> None:
        """Keep the response, then wake the flight's waiters with it (in that order under the lock, so a
        request arriving meanwhile finds one or the other). A response too large for the LRU is kept
        without its body: a repeat is refused rather than run again."""
        kept = completed
        if not self.records.fits(completed.size):
            kept = Completed(completed.fingerprint, completed.response.without_body())
        with self._lock:
            self.records.put(key, kept, ttl_s)
            waiters = self._land(key, flight, completed.response)
        _wake(waiters, completed.response)

    def abandon(self, key: str, flight: Flight) -> None:
        """The key is free again: wake the flight's waiters with None (they claim it themselves)."""
        with self._lock:
            waiters = self._land(key, flight, None)
        _wake(waiters, None)

    async def wait(self, flight: Flight, timeout_s: float) -> StoredResponse | None:
        """The flight's response, or None once it was released; TimeoutError after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        waiter: Waiter = (loop, loop.create_future())
        with self._lock:
            if flight.landed:
                return flight.result
            flight.waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter[1], max(0.0, timeout_s))
        finally:
            with self._lock:
                if waiter in flight.waiters:
                    flight.waiters.remove(waiter)

    def _start(self, key: str, fingerprint: str) -> Flight | Taken:
        if (flight := self._flights.get(key)) is not None:
            return flight
        flight = self._flights[key] = Flight(fingerprint)
        return Taken(flight)

    def _land(self, key: str, flight: Flight, result: StoredResponse | None) -> list[Waiter]:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if flight.landed:
            return []
        flight.landed, flight.result = True, result
        waiters, flight.waiters = flight.waiters, []
        return waiters


def _wake(waiters: list[Waiter], result: StoredResponse | None) -> None:
    for loop, future in waiters:
        with contextlib.suppress(RuntimeError):  # its loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, future, result)


def _resolve(future: asyncio.Future[StoredResponse | None], result: StoredResponse | None) -> None:
    if not future.done():  # a waiter that timed out or was cancelled has gone
        future.set_result(result)


_local: LocalStore | None = None


def local_store() -> LocalStore:
    """This process's store, sized by EDGE_IDEMPOTENCY_LOCAL_MAX_BYTES on first use."""
    global _local
    if _local is None:
        from django.conf import settings

        _local = LocalStore(settings.EDGE_IDEMPOTENCY_LOCAL_MAX_BYTES)
    return _local
