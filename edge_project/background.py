"""Work the event loop finishes after a response has gone: cache writes, trial releases, closing clients.

A task nobody holds may be collected before it runs to the end (the loop keeps only weak
references), and a failure nobody awaits is lost. Tasks started here are held until done, their
failures are logged, and shutdown gives the ones in flight a moment to finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

_running: set[asyncio.Task[None]] = set()


def run_in_background(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Start ``work``; the task is returned for callers that also await it (through ``asyncio.shield``)."""
    task = asyncio.get_running_loop().create_task(work)
    _running.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[None]) -> None:
    _running.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("background work failed", exc_info=error)


async def finish_background_work(timeout_s: float) -> None:
    """At shutdown: wait (at most ``timeout_s``) for this loop's work in flight; each piece bounds its own I/O."""
    loop = asyncio.get_running_loop()
    mine = [task for task in _running if task.get_loop() is loop]
    if mine:
        await asyncio.wait(mine, timeout=timeout_s)
