"""Idempotency records in Redis, shared by every gateway process.

One hash per tenant and key: ``fp``, the first request's fingerprint, and either ``owner``, the claim's
token, while it runs, or ``resp``, the response's wire form, once it completed. In flight, the hash
expires with its claim's lease (EDGE_LEASE_S, renewed while the request runs: edge_project.leases);
completed, after EDGE_IDEMPOTENCY_TTL_S. Each operation is one script, so one atomic round trip. The
tenant is the key's hash tag: a tenant's records share a Redis Cluster slot.

Every command runs through ``bounded()``, and anything else going wrong on the way (a reply this code
cannot read, say) is reported the same way: the function returns None, Redis cools down, and the
caller falls back to the in-process store. Nothing here raises.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio
from django.conf import settings

from apps.proxy.idempotency.stored import Completed, StoredResponse
from edge_project.redis_clients import bounded, redis_key

T = TypeVar("T")

CLAIMED, DONE, REUSED, BUSY = 1, 2, 3, 4
_CLAIM = """
local found = redis.call('hmget', KEYS[1], 'fp', 'resp')
if not found[1] then
  redis.call('hset', KEYS[1], 'fp', ARGV[1], 'owner', ARGV[2])
  redis.call('pexpire', KEYS[1], ARGV[3])
  return {1}
end
if found[1] ~= ARGV[1] then return {3} end
if found[2] then return {2, found[2]} end
return {4}
"""
# Keeps the response if the claim is still ours, or if nobody holds the key (the lease ran out during
# a Redis outage, or the claim was made in-process while Redis was unusable); never over another
# request's claim or response.
_FINISH = """
local found = redis.call('hmget', KEYS[1], 'fp', 'owner')
if found[1] and found[2] ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1])
redis.call('hset', KEYS[1], 'fp', ARGV[2], 'resp', ARGV[3])
redis.call('pexpire', KEYS[1], ARGV[4])
return 1
"""
# Release and renewal touch the record only while the claim is still ours: once its lease ran out,
# another request may hold the key.
_RELEASE = "if redis.call('hget', KEYS[1], 'owner') == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_RENEW = """
if redis.call('hget', KEYS[1], 'owner') == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Found:
    outcome: int  # CLAIMED, DONE, REUSED or BUSY
    response: StoredResponse | None = None  # with DONE


def record_key(tenant_id: int, key: str) -> str:
    """The record's Redis key (also its name in the in-process store): the client's key is hashed, so any
    255 characters make a short key of one shape."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return redis_key("idempotency", f"{{{tenant_id}}}", digest)


async def claim(record: str, fingerprint: str, token: str) -> Found | None:
    """Take the key for ``token`` if nobody has, else say who has: one round trip."""
    lease_ms = int(settings.EDGE_LEASE_S * 1000)

    async def command(client: redis.asyncio.Redis) -> Found:
        reply: Any = await client.eval(_CLAIM, 1, record, fingerprint, token, lease_ms)
        outcome = int(reply[0])
        return Found(outcome, StoredResponse.from_bytes(reply[1]) if outcome == DONE else None)

    return await bounded(command)


async def save(record: str, token: str, completed: Completed) -> bool | None:
    """Keep the response for EDGE_IDEMPOTENCY_TTL_S, unless the key is another claim's: False then."""
    ttl_ms = settings.EDGE_IDEMPOTENCY_TTL_S * 1000
    wire = completed.response.to_bytes()

    async def command(client: redis.asyncio.Redis) -> bool:
        reply: Any = await client.eval(_FINISH, 1, record, token, completed.fingerprint, wire, ttl_ms)
        return bool(reply)

    return await bounded(command)


async def release(record: str, token: str) -> None:
    async def command(client: redis.asyncio.Redis) -> None:
        await client.eval(_RELEASE, 1, record, token)

    await bounded(command)


def queue_renewal(pipe: redis.asyncio.client.Pipeline, record: str, token: str, lease_ms: int) -> None:
    pipe.eval(_RENEW, 1, record, token, lease_ms)

