"""L2: cached answers in Redis, shared by every gateway process.

Through ``edge_project.redis_clients`` rather than django-redis: django-redis 7 has no native async
API (Django's ``aget`` runs the sync client in a thread), and a thread hop on every lookup costs
more than the lookup (see the cache section of README.md for the measurement). Every command runs
through ``bounded()``: a failure is reported for the cool-down and answered as a miss (or a lost
write), never raised: without Redis the gateway serves from L1 and the providers.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from django.conf import settings

from apps.proxy.cache.stored import CachedAnswer
from edge_project.redis_clients import bounded

logger = logging.getLogger(__name__)
LOCK_SUFFIX = ":lock"
# The answer and its TTL; or, on a miss and if asked (ARGV[1] is a token), the flight lock.
_FETCH = """
local value = redis.call('get', KEYS[1])
if value then return {value, redis.call('pttl', KEYS[1]), 0} end
if ARGV[1] ~= '' and redis.call('set', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {false, 0, 1} end
return {false, 0, 0}
"""
# Deletes the flight lock only if it is still ours: an expired lock may have been taken over.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@dataclass(frozen=True, slots=True)
class Found:
    answer: CachedAnswer | None
    ttl_s: float  # what the answer has left in Redis
    lock: str | None  # on a miss: the flight lock's token if taken, None if another process holds it,
    #                   "" if not asked for or Redis is unusable (lead without one)


NOTHING = Found(None, 0.0, "")


async def fetch(key: str, *, lock: bool) -> Found:
    """The answer, or on a miss (if ``lock``) the flight lock for it: one round trip either way."""
    token = secrets.token_hex(8) if lock else ""
    lock_ms = int(settings.EDGE_CACHE_FLIGHT_WAIT_S * 1000)

    async def ask(client: redis.asyncio.Redis) -> Found:
        reply: Any = await client.eval(_FETCH, 2, key, key + LOCK_SUFFIX, token, lock_ms)
        data, ttl_ms, taken = reply  # read here: a reply of another shape is Redis trouble, not a 500
        if isinstance(data, bytes):
            return Found(CachedAnswer.from_bytes(data), max(0.0, int(ttl_ms) / 1000), "")
        return Found(None, 0.0, token if taken else (None if lock else ""))

    return await bounded(ask) or NOTHING


async def store(key: str, answer: CachedAnswer | None, ttl_s: int, lock_token: str | None) -> None:
    """Save the answer (if any) and release the flight lock (if held): one round trip, off the response path."""

    async def write(client: redis.asyncio.Redis) -> None:
        async with client.pipeline(transaction=False) as pipe:
            if answer is not None:
                pipe.set(key, answer.to_bytes(), px=ttl_s * 1000)
            if lock_token:
                pipe.eval(_RELEASE, 1, key + LOCK_SUFFIX, lock_token)
            await pipe.execute()

    if answer is not None or lock_token:
        await bounded(write)
