"""Leases: what a running request holds in Redis stays held while its process lives, and no longer.

Admission's concurrency slots and budget reservations, and idempotency claims, are written to Redis
with a lease: an expiry ``EDGE_LEASE_S`` ahead. A request can run far longer than that (a stream may
last minutes), so while it runs its process renews the lease; a process that dies renews nothing,
and what it held expires within ``EDGE_LEASE_S``. One task per event loop renews every lease held on
that loop every ``EDGE_LEASE_S / 3``, all of them in one pipeline (one round trip however many
requests are in flight). Renewal goes through the Redis seam: while Redis is unusable it is skipped,
and leases that expired meanwhile are the owner's to notice (an owner must not assume its lease
survived an outage longer than ``EDGE_LEASE_S``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

import redis.asyncio
from django.conf import settings

from edge_project.redis_clients import bounded, redis_configured

logger = logging.getLogger(__name__)


class Lease(Protocol):
    def renew(self, pipe: redis.asyncio.client.Pipeline, lease_ms: int) -> None:
        """Queue the commands that push this lease's expiry ``lease_ms`` into the future."""


class LeaseKeeper:
    """The leases held by this process's requests, per event loop (Redis clients are per loop)."""

    def __init__(self) -> None:
        self._held: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[Lease]] = weakref.WeakKeyDictionary()
        self._tasks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )

    def hold(self, lease: Lease) -> None:
        """Renew ``lease`` until ``drop()``; call from the event loop that owns the request."""
        if not redis_configured():
            return
        loop = asyncio.get_running_loop()
        self._held.setdefault(loop, set()).add(lease)
        task = self._tasks.get(loop)
        if task is None or task.done():
            self._tasks[loop] = loop.create_task(self._renew_forever(loop), name="lease-keeper")

    def drop(self, lease: Lease) -> None:
        """Stop renewing ``lease`` (safe from any code running on its loop, cancelled or not)."""
        for held in self._held.values():
            held.discard(lease)

    def held(self) -> int:
        """Leases held on this loop (tests and health)."""
        return len(self._held.get(asyncio.get_running_loop(), ()))

    async def _renew_forever(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            await asyncio.sleep(settings.EDGE_LEASE_S / 3)
            leases = list(self._held.get(loop, ()))
            if leases:
                await renew(leases)


async def renew(leases: list[Lease]) -> None:
    """Renew ``leases`` now, in one pipeline (the keeper's loop; tests call it directly)."""
    lease_ms = int(settings.EDGE_LEASE_S * 1000)

    async def send(client: redis.asyncio.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        for lease in leases:
            lease.renew(pipe, lease_ms)
        await pipe.execute()

    await bounded(send)


lease_keeper = LeaseKeeper()
