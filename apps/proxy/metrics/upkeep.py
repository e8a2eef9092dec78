"""Gauges only a process itself can read (its L1 cache, its ledger spool), kept current in its files.

Every process sets them every few seconds, and the process answering a scrape sets its own just before,
so ``/metrics`` adds up every live process's values (``livesum``/``livemax`` in ``families``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from apps.billing.ledger import ledger_health
from apps.proxy.cache.lru import local_cache
from apps.proxy.metrics import families as m

logger = logging.getLogger(__name__)
INTERVAL_S = 5.0  # well under a typical scrape interval (15 s): a scrape sees values this fresh


def refresh_process_gauges() -> None:
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

    async def _run(self) -> None:
        while True:
            try:
                refresh_process_gauges()
            except Exception:  # a metric must never take the process down; say so and go on
                logger.exception("could not refresh this process's metrics")
            await asyncio.sleep(INTERVAL_S)


upkeep = Upkeep()
