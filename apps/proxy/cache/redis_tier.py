"""L2: cached answers in Redis, shared by every gateway process.

Through ``edge_project.redis_clients`` rather than django-redis: django-redis 7 has no native async
API (Django's ``aget`` runs the sync client in a thread), and a thread hop on every lookup costs
more than the lookup (see the cache section of README.md for the measurement). Every command is
bounded by REDIS_TIMEOUT_S; a failure is reported for the cool-down and answered as a miss (or a
lost write), never raised: without Redis the gateway serves from L1 and the providers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio
from django.conf import settings
from redis.exceptions import RedisError

from apps.proxy.cache.stored import CachedAnswer
from edge_project.redis_clients import async_redis, report_redis_failure

logger = logging.getLogger(__name__)
T = TypeVar("T")
LOCK_SUFFIX = ":lock"
# Deletes the flight lock only if it is still ours: an expired lock may have been taken over.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


async def bounded(command: Callable[[redis.asyncio.Redis], Awaitable[T]]) -> T | None:
    """Run one command, or None when Redis is unconfigured, cooling down, or failing."""
    client = async_redis()
    if client is None:
        return None
    try:
        # The socket timeouts bound each read; this also bounds the whole exchange (connect + write + read).
        async with asyncio.timeout(settings.REDIS_TIMEOUT_S * 2):
            return await command(client)
    except (RedisError, OSError, TimeoutError) as exc:
        report_redis_failure(exc)
        await _drop_connections(client)
        return None


async def _drop_connections(client: redis.asyncio.Redis) -> None:
    # After a restart every pooled connection is stale, and each would otherwise fail once, a
    # cool-down apart: measured, 6 pooled connections kept L2 away for ~6 s after Redis was back.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(settings.REDIS_TIMEOUT_S):
            await client.connection_pool.disconnect()


async def fetch(key: str) -> tuple[CachedAnswer | None, float]:
    """The answer and the seconds it has left (one round trip), or (None, 0)."""

    async def get_with_ttl(client: redis.asyncio.Redis) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            return list(await pipe.execute())

    found = await bounded(get_with_ttl)
    if not found or not isinstance(found[0], bytes):
        return None, 0.0
    data, ttl_ms = found
    return CachedAnswer.from_bytes(data), max(0.0, int(ttl_ms) / 1000)


async def save(key: str, answer: CachedAnswer, ttl_s: int) -> None:
    await bounded(lambda client: client.set(key, answer.to_bytes(), px=ttl_s * 1000))


async def take_flight_lock(key: str) -> str | None:
    """The lock's token if this process now leads the flight for ``key``; None if another process does.

    Without Redis (unconfigured, cooling down, failing) every process leads its own flights, with
    the empty token: the answer is still right, the provider is only asked once per process.
    """
    token = secrets.token_hex(8)
    ttl_ms = int(settings.EDGE_CACHE_FLIGHT_WAIT_S * 1000)

    async def set_if_free(client: redis.asyncio.Redis) -> bool:
        return bool(await client.set(key + LOCK_SUFFIX, token, nx=True, px=ttl_ms))

    taken = await bounded(set_if_free)
    return "" if taken is None else (token if taken else None)


async def release_flight_lock(key: str, token: str) -> None:
    if token:
        await bounded(lambda client: client.eval(_RELEASE, 1, key + LOCK_SUFFIX, token))
