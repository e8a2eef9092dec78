"""Each process's metrics written to its files: the requests' tallies (``tally``), and the gauges only
the process itself can read (its connections, its L1 cache, its ledger spool).

Every process does so every second, and the process answering a scrape just before it, so ``/metrics``
adds up every process's counts and every live process's gauges (``livesum``/``livemax`` in ``families``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from apps.billing.ledger import ledger_health
from apps.proxy.cache.lru import local_cache
from apps.proxy.metrics import families as m
from apps.proxy.metrics import observe, tally

logger = logging.getLogger(__name__)
INTERVAL_S = 1.0  # what another process's scrape may miss of this one's last requests, at most


def write_out() -> None:
    """On the event loop's thread: the request path adds to the tallies there."""
    tally.flush()
    m.active.set(observe.active_connections)
    m.cache_size.labels("l1").set(local_cache().size)
    spool = ledger_health()
    m.spool_backlog.set(spool["backlog"])
    m.spool_oldest.set(spool["oldest_uncommitted_s"] or 0.0)
    m.spool_bytes.set(spool["spool_bytes"])


class Upkeep:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        write_out()  # the last counts of a process that stops

    async def _run(self) -> None:
        while True:
            try:
                write_out()
            except Exception:  # a metric must never take the process down; say so and go on
                logger.exception("could not refresh this process's metrics")
            await asyncio.sleep(INTERVAL_S)


upkeep = Upkeep()
