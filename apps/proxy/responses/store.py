"""Stored responses: what a later request's ``previous_response_id`` continues, kept per tenant.

A record is the response as the client got it plus every input item of the conversation up to it, so the
next turn is written out in full (earlier input, earlier output, new input) for whichever provider serves
it, OpenAI or not. It lives in Redis (``SET … PX``, EDGE_RESPONSES_RETENTION_S) when REDIS_URL is set, so
every gateway process finds it; in this process's byte-bounded LRU otherwise (``make run``), and while
Redis is unusable. The tenant is part of the key: another tenant's id is simply not found.

Written on the request path, after the answer is complete and before the client is told so (the last
stream event): a client continues a conversation as soon as it has the answer, and one Redis SET is
bounded by REDIS_TIMEOUT_S. Postgres is not used: nothing here is read by reports, retention is a TTL,
and a spool would make the next turn race the write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
import redis.asyncio
from django.conf import settings

from apps.proxy.cache.lru import ByteLRU
from edge_project.redis_clients import bounded, redis_configured, redis_key

RECORD_OVERHEAD_BYTES = 256  # the LRU's bookkeeping per record, roughly


@dataclass(frozen=True, slots=True)
class Stored:
    response: dict[str, Any]  # as the client got it
    input: list[dict[str, Any]]  # the conversation's input items up to this response, earlier outputs included
    turn: int = 0  # where, in ``input``, this response's own request began (GET …/input_items lists from there)
    wire: bytes = field(default=b"", compare=False)

    @property
    def size(self) -> int:
        return len(self.wire) + RECORD_OVERHEAD_BYTES

    @property
    def conversation(self) -> list[dict[str, Any]]:
        """What the next turn continues: every input item, then this response's output items."""
        return [*self.input, *self.response.get("output", [])]

    @classmethod
    def of(cls, response: dict[str, Any], input_items: list[dict[str, Any]], turn: int = 0) -> Stored:
        wire = orjson.dumps({"response": response, "input": input_items, "turn": turn})
        return cls(response, input_items, turn, wire)

    @classmethod
    def from_wire(cls, wire: bytes) -> Stored:
        record = orjson.loads(wire)
        return cls(record["response"], record["input"], int(record.get("turn", 0)), wire)


@cache
def _local() -> ByteLRU[Stored]:
    return ByteLRU(settings.EDGE_RESPONSES_LOCAL_MAX_BYTES)


def record_key(tenant_id: int, response_id: str) -> str:
    return redis_key("responses", f"{{{tenant_id}}}", response_id)


async def keep(tenant_id: int, stored: Stored) -> None:
    key, ttl_s = record_key(tenant_id, stored.response["id"]), settings.EDGE_RESPONSES_RETENTION_S

    async def command(client: redis.asyncio.Redis) -> bool:
        return bool(await client.set(key, stored.wire, px=ttl_s * 1000))

    if not (redis_configured() and await bounded(command)):
        _local().put(key, stored, ttl_s)


async def find(tenant_id: int, response_id: str) -> Stored | None:
    key = record_key(tenant_id, response_id)

    async def command(client: redis.asyncio.Redis) -> bytes | None:
        wire: Any = await client.get(key)
        return wire if isinstance(wire, bytes) else None

    if redis_configured() and (wire := await bounded(command)) is not None:
        return Stored.from_wire(wire)
    return _local().get(key)  # kept here without Redis, or while Redis was unusable


async def forget(tenant_id: int, response_id: str) -> bool:
    """Delete the record; whether there was one."""
    key = record_key(tenant_id, response_id)

    async def command(client: redis.asyncio.Redis) -> bool:
        return bool(await client.delete(key))

    deleted = bool(redis_configured() and await bounded(command))
    return _local().discard(key) or deleted
