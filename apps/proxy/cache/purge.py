"""Purging the cache by tenant or by model, in every gateway process at once.

A purge bumps a generation counter in Redis (one hash, ``edge:cache:generations``) and publishes
the new value on the ``edge:cache`` channel (names under EDGE_REDIS_PREFIX). Each process runs
one subscriber task (started by its first cacheable request) that applies bumps to its in-process
counters and empties its L1. On every (re)subscription, and every RESYNC_S, it reloads all
counters, so a process that was cut off from Redis catches up on the purges it missed. Without
Redis a purge reaches only the process that made it (admin says so), and Redis's counters win
again once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import Any

import orjson
import redis
import redis.asyncio
from django.conf import settings

from apps.proxy.cache.generations import generations, model_field, tenant_field
from apps.proxy.cache.lru import local_cache
from edge_project.redis_clients import (
    async_redis,
    bounded,
    bounded_sync,
    redis_configured,
    redis_key,
    report_redis_failure,
)

logger = logging.getLogger(__name__)
POLL_S = 1.0
# Counters are also re-read this often, so a purge announced while this process's subscription was
# silently broken (a half-open connection never errors) still reaches it.
RESYNC_S = 10.0

_listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()
_loaded = asyncio.Event()


def channel() -> str:
    return redis_key("cache")


def generations_key() -> str:
    return redis_key("cache", "generations")


def purge_tenant(*, tenant_id: int) -> bool:
    """Make every cached answer of the tenant unreachable. True when every process was told."""
    return _purge(tenant_field(tenant_id))


def purge_model(*, model: str) -> bool:
    """Make every cached answer of the public model (its configured name: a pattern such as ``claude-*``
    purges the answers of every name it served) unreachable."""
    return _purge(model_field(model))


def _purge(field: str) -> bool:
    local = generations.of(field) + 1

    def bump(client: redis.Redis) -> int:
        generation = int(client.hincrby(generations_key(), field, 1))
        client.publish(channel(), orjson.dumps({"field": field, "generation": generation}))
        return generation

    shared = bounded_sync(bump)
    apply_bump(field, local if shared is None else shared)
    return shared is not None


def apply_bump(field: str, generation: int) -> None:
    if generations.set(field, generation):
        local_cache().clear()


async def generations_loaded() -> None:
    """Wait (once per process, at most REDIS_TIMEOUT_S) for the counters, so a fresh process never
    serves what was purged before it started. The subscriber's first try ends the wait, loaded or failed."""
    if _loaded.is_set() or not redis_configured():
        return
    ensure_listening()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_loaded.wait(), settings.REDIS_TIMEOUT_S)
    _loaded.set()  # tried once: later requests do not wait again; the subscriber keeps trying


def ensure_listening() -> None:
    loop = asyncio.get_running_loop()
    if loop not in _listeners and redis_configured():
        _listeners[loop] = loop.create_task(_listen(), name="edge-cache-purges")


async def stop_listening() -> None:
    task = _listeners.pop(asyncio.get_running_loop(), None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _listen() -> None:
    while True:
        try:
            await _follow_channel()
        except Exception as exc:  # the subscription's connection outlives one command: bounded()'s rule, by hand
            report_redis_failure(exc)
        _loaded.set()  # tried: a refusing Redis must not hold a process's first request for the whole wait
        await asyncio.sleep(settings.REDIS_COOLDOWN_S)


async def _follow_channel() -> None:
    client = async_redis()
    if client is None:
        return
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel())
        while True:
            if not await _reload_generations():  # after subscribing: no bump falls in between
                return  # Redis failed (reported): subscribe afresh after the cool-down
            _loaded.set()
            resync_at = time.monotonic() + RESYNC_S
            while time.monotonic() < resync_at:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_S)
                if message is not None:
                    _apply_message(message)
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated


async def _reload_generations() -> bool:
    """Take Redis's counters; False when Redis failed to give them."""

    async def read(client: redis.asyncio.Redis) -> dict[str, int]:
        stored: dict[bytes | str, bytes | str] = await client.hgetall(generations_key())
        return {_text(field): int(value) for field, value in stored.items()}

    values = await bounded(read)
    if values is None:
        return False
    if generations.replace(values):
        local_cache().clear()
    return True


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _apply_message(message: dict[str, Any]) -> None:
    try:
        bump = orjson.loads(message["data"])
        apply_bump(str(bump["field"]), int(bump["generation"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        logger.warning("ignored a malformed message on %s: %r", channel(), message.get("data"))
