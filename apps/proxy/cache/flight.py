"""Single flight: identical concurrent misses make one provider call; the others wait for its answer.

In a process, the first miss for a key leads and the rest await its future. Across processes, the
leading request of each process takes a short Redis lock (SET NX PX); a process that finds the lock
taken polls L2 for the other process's answer. Nobody waits unboundedly: waiters give up after
EDGE_CACHE_FLIGHT_WAIT_S, and a lock outlives a dead leader by at most as long.

A wait is part of the request's time: it never outlasts the request's deadline, and the attempt
loop gets only what the wait left of it. A streaming request waits only briefly
(EDGE_CACHE_STREAM_FLIGHT_WAIT_S): its client sees nothing until the other request's answer is
whole, so waiting for a long answer would cost it far more time to first token than asking itself.

A leader that fails (an error, a client that hung up, an answer that may not be cached) lands its
flight empty, and each waiter then makes its own call, as it would have without the cache. The
leader's error is not handed to waiters: it may be the leader's own (its attempt timed out, its
client left), and a waiter's call may well succeed.
"""

from __future__ import annotations

import asyncio
import time

from django.conf import settings

from apps.proxy.cache import redis_tier
from apps.proxy.cache.stored import CachedAnswer

POLL_FIRST_S = 0.02
POLL_MAX_S = 0.25


class Flights:
    """This process's flights in progress, by cache key."""

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[CachedAnswer | None]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def lead(self, key: str) -> bool:
        """Start the flight for ``key``; False when one is already on its way."""
        if key in self._flights:
            return False
        self._flights[key] = asyncio.get_running_loop().create_future()
        return True

    def current(self, key: str) -> asyncio.Future[CachedAnswer | None] | None:
        return self._flights.get(key)

    def land(self, key: str, answer: CachedAnswer | None) -> None:
        """End the flight: waiters get ``answer``, or None and make their own calls. Idempotent."""
        future = self._flights.pop(key, None)
        if future is not None and not future.done():
            future.set_result(answer)

    def clear(self) -> None:
        for key in list(self._flights):
            self.land(key, None)


def wait_limit_s(*, stream: bool, deadline_s: float) -> float:
    """The longest a request may wait for an identical one in flight."""
    longest: float = settings.EDGE_CACHE_FLIGHT_WAIT_S
    if stream:
        longest = min(longest, settings.EDGE_CACHE_STREAM_FLIGHT_WAIT_S)
    return min(longest, deadline_s)


async def wait_for(flight: asyncio.Future[CachedAnswer | None], wait_s: float) -> CachedAnswer | None:
    try:
        # Shielded: one waiter's client hanging up must not cancel the future the others wait on.
        return await asyncio.wait_for(asyncio.shield(flight), wait_s)
    except TimeoutError:
        return None


async def follow_other_process(key: str, wait_s: float) -> tuple[CachedAnswer | None, float, str]:
    """While another process leads: poll L2 for its answer, or take the lock over if it is released.

    Returns the answer and its seconds left, or no answer and the lock token to lead with ("" when
    leading without one).
    """
    deadline = time.monotonic() + wait_s
    delay = POLL_FIRST_S
    while (left_s := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(delay, left_s))
        delay = min(delay * 2, POLL_MAX_S)
        found = await redis_tier.fetch(key, lock=True)
        if found.answer is not None or found.lock is not None:
            return found.answer, found.ttl_s, found.lock or ""
    return None, 0.0, ""


flights = Flights()
