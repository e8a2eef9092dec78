"""The project's one Redis seam: bounded clients, and a cool-down that keeps a sick Redis off the request path.

redis-py's default retries made one command against a hung Redis take ~5 s even with a socket
timeout; these clients never retry and give up after REDIS_TIMEOUT_S. After any failure, callers
skip Redis for ``REDIS_COOLDOWN_S`` (falling back to their in-process state) instead of each paying
the timeout again, and the first call after the cool-down tries Redis again, with fresh clients, so
it comes back by itself. ``bounded()`` is the one way to run an async command with both, and
``bounded_sync()`` its blocking twin (admin, management commands).

Both are a boundary: whatever a command raises, it is Redis trouble, reported and answered "no
answer". Not only redis-py's own errors: a transport closed under a write raises uvloop's
``RuntimeError`` straight through redis-py, a garbled reply ``ValueError`` or ``TypeError`` from its
parser, and a 500 for any of them would let a sick Redis fail requests. Only cancellation (and other
``BaseException``s that are not ``Exception``s) passes through. A caller that holds a connection
for longer than one command (the purge subscriber) catches ``Exception`` the same way and reports it.

Async clients are per event loop, like the HTTP clients: a connection is bound to the loop that
opened it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from edge_project.background import run_in_background

logger = logging.getLogger(__name__)
T = TypeVar("T")

_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = weakref.WeakKeyDictionary()
_sync_client: redis.Redis | None = None
_sync_lock = threading.Lock()
_unusable_until = 0.0


def redis_key(*parts: object) -> str:
    """A Redis key or channel name of this installation: EDGE_REDIS_PREFIX, then the parts joined by ':'."""
    return settings.EDGE_REDIS_PREFIX + ":".join(str(part) for part in parts)


def redis_configured() -> bool:
    return bool(settings.REDIS_URL)


def redis_usable() -> bool:
    """Configured, and not cooling down after a failure."""
    return redis_configured() and time.monotonic() >= _unusable_until


def report_redis_failure(exc: BaseException) -> None:
    """Callers report a failed command here; Redis is skipped until the cool-down ends. Never raises:
    it runs in the callers' ``except`` blocks, on the request path."""
    global _unusable_until
    if time.monotonic() >= _unusable_until:
        # An error that is not Redis's own or the network's may be a bug of ours: keep its traceback.
        expected = isinstance(exc, (RedisError, OSError, TimeoutError))
        logger.warning("Redis unavailable, using in-process state for %.1f s: %r", settings.REDIS_COOLDOWN_S, exc,
                       exc_info=None if expected else exc)
    _unusable_until = time.monotonic() + settings.REDIS_COOLDOWN_S
    try:
        _discard_clients()
    except Exception:
        logger.warning("could not discard the Redis clients", exc_info=True)


def _discard_clients() -> None:
    """Drop the clients, so the next command after the cool-down connects afresh.

    After a Redis restart every pooled connection is stale and fails once more, each failure a
    cool-down apart: measured, six pooled connections kept the cache's Redis tier away for ~6 s.
    """
    global _sync_client
    with _sync_lock:
        stale_sync, _sync_client = _sync_client, None
    if stale_sync is not None:
        stale_sync.close()  # closes sockets; never waits on the network
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # a thread without a loop (admin, management commands): no async client here
    stale = _async_clients.pop(loop, None)
    if stale is not None:
        run_in_background(_close_quietly(stale))


async def _close_quietly(client: redis.asyncio.Redis) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(settings.REDIS_TIMEOUT_S):
            await client.aclose()


def async_redis() -> redis.asyncio.Redis | None:
    """This loop's client, or None when Redis is unconfigured or cooling down."""
    if not redis_usable():
        return None
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = redis.asyncio.Redis.from_url(str(settings.REDIS_URL), **redis_options())
    return client


async def bounded(command: Callable[[redis.asyncio.Redis], Awaitable[T]]) -> T | None:
    """Run one exchange on this loop's client: its answer, or None when Redis is unconfigured, cooling
    down, or failing in any way (reported, which starts the cool-down and drops the stale client).

    ``command`` may read the reply too: whatever it raises while doing so counts as Redis trouble.
    """
    try:
        client = async_redis()
        if client is None:
            return None
        # One REDIS_TIMEOUT_S for the whole exchange: the socket timeouts bound each connect and read
        # alone, and a new connection makes several (CLIENT SETINFO, SELECT) before the command's own.
        async with asyncio.timeout(settings.REDIS_TIMEOUT_S):
            return await command(client)
    except Exception as exc:  # every failure (see the module docstring); CancelledError passes
        report_redis_failure(exc)
        return None


def bounded_sync(command: Callable[[redis.Redis], T]) -> T | None:
    """``bounded()`` for the blocking client: each read is bounded by the socket timeout."""
    try:
        client = sync_redis()
        if client is None:
            return None
        return command(client)
    except Exception as exc:
        report_redis_failure(exc)
        return None


def sync_redis() -> redis.Redis | None:
    """The process's blocking client (admin, management commands, background threads), or None."""
    global _sync_client
    if not redis_usable():
        return None
    with _sync_lock:
        if _sync_client is None:
            _sync_client = redis.Redis.from_url(str(settings.REDIS_URL), **redis_options())
        return _sync_client


async def close_async_redis() -> None:
    """Close this loop's client (at shutdown)."""
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await _close_quietly(client)  # a sick Redis must not hold up or fail the shutdown


def redis_options() -> dict[str, Any]:
    timeout: float = settings.REDIS_TIMEOUT_S
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": 0,
    }
