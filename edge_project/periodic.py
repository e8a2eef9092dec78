"""The schedule run inside the gateway when there is no Celery broker (`make run`: REDIS_URL unset).

The same entries Celery beat would send (``CELERY_BEAT_SCHEDULE``, edge_project.schedule), each run
with its task's ``apply()`` (eagerly, as without a broker ``.delay()`` would) on a worker thread, so
the event loop and the request path never wait on the ORM work. Started by the lifespan; each entry
first runs one interval after start. With several worker processes each runs the schedule: the tasks
are safe to repeat (alerts are recorded once per threshold, retention takes a lock).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.conf import settings

from edge_project.db import release_connection

logger = logging.getLogger(__name__)


class PeriodicRunner:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin running the schedule on this loop, if this process should (no broker, not turned off)."""
        if self._task is not None or not settings.CELERY_TASK_ALWAYS_EAGER or not settings.EDGE_PERIODIC_IN_PROCESS:
            return
        schedule: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
        if schedule:
            self._task = asyncio.get_running_loop().create_task(self._run(schedule))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, schedule: dict[str, dict[str, Any]]) -> None:
        due = {name: time.monotonic() + float(entry["schedule"]) for name, entry in schedule.items()}
        while True:
            name = min(due, key=due.__getitem__)
            await asyncio.sleep(max(0.0, due[name] - time.monotonic()))
            await asyncio.to_thread(run_task, schedule[name]["task"])
            due[name] = time.monotonic() + float(schedule[name]["schedule"])


def run_task(name: str) -> None:
    """One run of a scheduled task, in this thread; its failure is logged, never raised into the loop."""
    from edge_project.celery import app

    try:
        app.loader.import_default_modules()  # the apps' tasks.py, found as a worker finds them (once; cached)
        app.tasks[name].apply(throw=True)
    except Exception:
        logger.exception("scheduled task %s failed", name)
    finally:
        release_connection()


periodic = PeriodicRunner()
