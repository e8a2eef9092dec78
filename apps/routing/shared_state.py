"""Breaker states and health counters shared by every gateway process, kept off the request path.

Requests read only this process's memory. One background task per process (started by the first
request) refreshes it every ``EDGE_ROUTING_SYNC_S`` with one Redis pipeline: it writes the health
counters this process gathered since the last round, and reads every deployment's breaker state and
every process's health counters. A breaker opened in one process is therefore seen by the others
within about one interval (and its transition is written at once, see ``apps.routing.breakers``).
Without Redis, or while it cools down after a failure, the local view is used as it is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

import orjson
import redis.asyncio
from django.conf import settings

from apps.routing.breakers import STATE_TTL_S, BreakerBoard, SharedBreakerState, state_key
from apps.routing.health import Counters, HealthBook
from apps.routing.retry_budget import RetryBudget
from apps.routing.table import DEFAULT_POLICY  # a breaker first met here takes its policy on first use
from edge_project.redis_clients import bounded, bounded_sync, redis_configured, redis_key, redis_usable

logger = logging.getLogger(__name__)

HEALTH_TTL_S = 600
PROCESS_ID = f"{socket.gethostname()}-{os.getpid()}"


def health_key(deployment_id: int) -> str:
    return redis_key("health", deployment_id)


class SharedState:
    def __init__(self) -> None:
        self.breakers = BreakerBoard()
        self.health = HealthBook()
        self.budget = RetryBudget()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def ensure_syncing(self, deployment_ids: Callable[[], list[int]]) -> None:
        """Start this loop's refresh task unless it runs (cheap: called on every request). Without
        Redis there is nothing to exchange, and no task."""
        if not redis_configured():
            return
        loop = asyncio.get_running_loop()
        if self._task is not None and self._loop is loop and not self._task.done():
            return
        self._loop = loop
        self._task = loop.create_task(self._refresh_forever(deployment_ids), name="routing-shared-state")

    async def _refresh_forever(self, deployment_ids: Callable[[], list[int]]) -> None:
        while True:
            try:
                await self.refresh(deployment_ids())
            except Exception:
                logger.warning("routing state refresh failed; using this process's view", exc_info=True)
            await asyncio.sleep(settings.EDGE_ROUTING_SYNC_S)

    async def refresh(self, deployment_ids: list[int]) -> None:
        if not deployment_ids or not redis_usable():
            return
        unsent = {id_: self.health.local[id_] for id_ in self.health.unsent if id_ in self.health.local}
        self.health.unsent.clear()

        async def exchange(client: redis.asyncio.Redis) -> bool:
            pipe = client.pipeline(transaction=False)
            for deployment_id, counters in unsent.items():
                key = health_key(deployment_id)
                pipe.hset(key, PROCESS_ID, orjson.dumps(counters.as_list()))
                pipe.expire(key, HEALTH_TTL_S)
            pipe.mget([state_key(id_) for id_ in deployment_ids])
            for deployment_id in deployment_ids:
                pipe.hgetall(health_key(deployment_id))
            results = (await pipe.execute())[2 * len(unsent):]
            # Read inside the exchange: a reply of the wrong shape is Redis trouble, like a failed command.
            self._adopt_breakers(deployment_ids, results[0])
            for deployment_id, entries in zip(deployment_ids, results[1:], strict=True):
                self.health.remote[deployment_id] = _other_processes(entries)
            return True

        if await bounded(exchange) is None:
            self.health.unsent.update(unsent)  # sent with the next round that gets through

    def _adopt_breakers(self, deployment_ids: list[int], states: list[bytes | None]) -> None:
        for deployment_id, raw in zip(deployment_ids, states, strict=True):
            remote = SharedBreakerState.from_json(raw) if raw else None
            breaker = self.breakers.breakers.get(deployment_id)
            if remote is None:
                continue
            if breaker is None:
                if remote.state == "closed":
                    continue
                breaker = self.breakers.get(deployment_id, DEFAULT_POLICY)
            breaker.adopt(remote)

    def reset(self) -> None:
        self.breakers.reset()
        self.health.reset()
        self.budget = RetryBudget()


def _other_processes(entries: dict[bytes, bytes]) -> list[Counters]:
    return _parsed({process: raw for process, raw in entries.items() if process.decode() != PROCESS_ID})


def _parsed(entries: dict[bytes, bytes]) -> list[Counters]:
    """Every process's counters that parse: one malformed entry must not hide the others (or fail admin)."""
    counters = []
    for raw in entries.values():
        try:
            counters.append(Counters.from_list(orjson.loads(raw)))
        except (orjson.JSONDecodeError, ValueError, TypeError):
            continue
    return counters


def read_shared(deployment_ids: list[int]) -> tuple[dict[int, SharedBreakerState], dict[int, list[Counters]]]:
    """Breaker states and every process's health counters, read synchronously (admin)."""
    if not deployment_ids:
        return {}, {}

    def read(client: redis.Redis) -> tuple[dict[int, SharedBreakerState], dict[int, list[Counters]]]:
        pipe = client.pipeline(transaction=False)
        pipe.mget([state_key(id_) for id_ in deployment_ids])
        for deployment_id in deployment_ids:
            pipe.hgetall(health_key(deployment_id))
        states, *health = pipe.execute()
        breakers = {id_: state for id_, raw in zip(deployment_ids, states, strict=True)
                    if raw and (state := SharedBreakerState.from_json(raw)) is not None}
        counters = {id_: _parsed(entries) for id_, entries in zip(deployment_ids, health, strict=True)}
        return breakers, counters

    return bounded_sync(read) or ({}, {})


shared_state = SharedState()


def write_breaker_state(deployment_id: int, state: SharedBreakerState) -> None:
    """Set a breaker's shared state from outside the request path (admin)."""
    bounded_sync(lambda client: client.set(state_key(deployment_id), state.to_json(), ex=STATE_TTL_S))
