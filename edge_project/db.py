"""The database as the request path uses it: bounded in time, and left alone while it is failing.

Nothing on the request path waits on Postgres but a cold key lookup and a process's first routing
table; ``run_bounded()`` is how both (and health's own reads) ask it. The work runs on one of this
module's threads, inside a transaction whose ``statement_timeout`` is EDGE_DB_TIMEOUT_S, and the
caller waits at most EDGE_DB_TIMEOUT_S for it, then gets ``DatabaseUnavailable``:

- The statement timeout is ``SET LOCAL``: it ends with the transaction, so the pooled connection
  goes back to the ledger's flush thread and admin without it (they must not get a bound this short).
  A locked table costs the request the bound, and the server frees the thread at the same moment.
- The caller's own bound covers what the statement timeout cannot: a hung or unreachable server,
  where the pool waits 10 s for a connection and a query never returns. The thread is abandoned (a
  thread cannot be cancelled) and finishes on its own.
- While the database is failing, one call at a time (the probe) asks it and the others get
  ``DatabaseUnavailable`` at once, without a thread: requests do not each pay the bound, and a hung
  database holds one abandoned thread, not one per request. The first success ends the failure.
  ``database_failing()`` lets a caller that holds a usable stale answer skip the database meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_THREADS = 4  # without a connection pool (its size is the useful number of threads)


class DatabaseUnavailable(Exception):
    """The database did not answer request-path work within EDGE_DB_TIMEOUT_S, or refused it."""


def release_connection() -> None:
    """Hand this thread's connection back to the pool (or close it).

    Django returns connections when a request finishes; executor threads and background threads
    never finish one, so each would keep its connection checked out for good and starve the pool.
    Inside an open transaction (a test's atomic block) closing would poison it, so it is left.
    """
    if not connection.in_atomic_block:
        connection.close()


class _Availability:
    """What this process has learned of the database from the request path's own work."""

    def __init__(self) -> None:
        self.failing = False
        self.probing = False  # a call is asking a failing database (its thread may outlive its caller)

    def fail(self, reason: object) -> None:
        if not self.failing:
            logger.warning("database unavailable to requests (%s); cached answers are used where they may be", reason)
        self.failing = True

    def recover(self) -> None:
        if self.failing:
            logger.warning("database available to requests again")
        self.failing = False


_availability = _Availability()
_threads: ThreadPoolExecutor | None = None
_threads_lock = threading.Lock()


def database_failing() -> bool:
    """The request path's last word from the database was a failure (and no success since)."""
    return _availability.failing


def probe_due() -> bool:
    """Failing, and no call is asking the database whether it is back: the next call would."""
    return _availability.failing and not _availability.probing


async def run_bounded(work: Callable[[], T]) -> T:
    """``work()``'s result, computed on a database thread within EDGE_DB_TIMEOUT_S; else ``DatabaseUnavailable``.

    ``work`` runs in a transaction whose statements are bounded too (Postgres' statement_timeout).
    Exceptions of ``work`` that are not database errors reach the caller as they are.
    """
    probe = _availability.failing
    if probe:
        if _availability.probing:
            raise DatabaseUnavailable("the database is failing; another call is asking it")
        _availability.probing = True
    submitted = _executor().submit(_in_bounded_transaction, work)
    future = asyncio.wrap_future(submitted)
    future.add_done_callback(functools.partial(_settle, probe=probe))
    try:
        async with asyncio.timeout(settings.EDGE_DB_TIMEOUT_S):
            return await asyncio.shield(future)  # shielded: a thread cannot be stopped; it ends alone, then _settle
    except TimeoutError:
        submitted.cancel()  # work still queued behind busy threads is dropped; running work finishes alone
        _availability.fail(f"no answer within {settings.EDGE_DB_TIMEOUT_S} s")
        raise DatabaseUnavailable(f"the database did not answer within {settings.EDGE_DB_TIMEOUT_S} s") from None
    except asyncio.CancelledError:
        submitted.cancel()  # the caller left
        raise
    except DatabaseError as exc:
        raise DatabaseUnavailable(str(exc)) from exc


def _settle(future: asyncio.Future[object], *, probe: bool) -> None:
    """The thread's outcome, whenever it comes (also retrieves its exception: nobody else may)."""
    if probe:
        _availability.probing = False
    if future.cancelled():
        return
    error = future.exception()
    if error is None:
        _availability.recover()
    elif isinstance(error, DatabaseError):
        _availability.fail(type(error).__name__)


def _in_bounded_transaction(work: Callable[[], T]) -> T:
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    timeout_ms = max(1, round(settings.EDGE_DB_TIMEOUT_S * 1000))
                    cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)])
            return work()
    finally:
        release_connection()


def _executor() -> ThreadPoolExecutor:
    """The request path's database threads: their own, so abandoned ones never starve the loop's default
    executor (DNS lookups, ``asyncio.to_thread``)."""
    global _threads
    with _threads_lock:
        if _threads is None:
            pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
            size = int(pool.get("max_size", DEFAULT_THREADS)) if isinstance(pool, dict) else DEFAULT_THREADS
            _threads = ThreadPoolExecutor(max_workers=max(size, 2), thread_name_prefix="edge-db")
        return _threads
