"""Idempotency keys with Stripe's semantics: ``claim()`` before a request runs, ``finish()`` or ``release()`` after.

A request that carries an Idempotency-Key claims the key, scoped to its tenant, and then:
- nobody had it: a ``Claim``; the request runs, and ``finish()`` keeps its response for
  EDGE_IDEMPOTENCY_TTL_S, or ``release()`` frees the key (a response not to be kept: a 5xx, a 429, a
  cancelled request) and the next request with it runs again;
- a request with the same fingerprint completed: its ``StoredResponse``, and nothing runs;
- the fingerprint differs, whether the first request completed or is still running: 422;
- a request with the same fingerprint is still running: wait for it, at most ``wait_s`` (the request's
  deadline), and get its response, or the key if it was released (one waiter wins it, the others wait
  on the winner), or 409 with Retry-After: 1 once ``wait_s`` is up. Waiting rather than refusing at
  once (Stripe answers 409 at once) spares a client that retried a dropped connection a second retry:
  its repeat is answered when the first request is.

The key is claimed in Redis while Redis is usable, with a lease (EDGE_LEASE_S, renewed by
``edge_project.leases`` while the request runs, so a dead process's claim expires), and in this process
otherwise: then the guarantee holds per process (``local``). Requests of this process wait on the
claim's flight, a future; requests waiting on another process's claim poll Redis, 20 ms doubling to
200 ms. Nothing here raises but the errors in ``errors``: a failing Redis means the in-process store.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass

import redis.asyncio
from django.conf import settings

from apps.proxy.idempotency import redis_store
from apps.proxy.idempotency.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotentResponseTooLarge,
    check_key,
)
from apps.proxy.idempotency.local import Flight, local_store
from apps.proxy.idempotency.stored import Completed, StoredResponse
from edge_project.background import run_in_background
from edge_project.leases import lease_keeper

logger = logging.getLogger(__name__)
POLL_FIRST_S = 0.02
POLL_MAX_S = 0.2
_waiting = 0


@dataclass(slots=True, eq=False)  # hashed by identity: the lease keeper holds it in a set
class Claim:
    """This request holds the key until ``finish()`` or ``release()``."""

    record: str  # the record's name, in Redis and in this process
    fingerprint: str
    token: str  # this claim's, in the record while it holds the key
    flight: Flight  # what this process's requests with the same key wait on
    in_redis: bool  # else held in this process only (Redis unconfigured or unusable when claimed)
    ended: bool = False

    def renew(self, pipe: redis.asyncio.client.Pipeline, lease_ms: int) -> None:
        redis_store.queue_renewal(pipe, self.record, self.token, lease_ms)


async def claim(*, tenant_id: int, key: str, fingerprint: str, wait_s: float) -> Claim | StoredResponse:
    """Hold the key, or the response of the request that held it; see the module docstring.

    Raises InvalidIdempotencyKey (400), IdempotencyKeyReused (422), IdempotencyKeyInUse (409) and
    IdempotentResponseTooLarge (422: the first request's response was not kept), nothing else.
    """
    check_key(key)
    record = redis_store.record_key(tenant_id, key)
    deadline = time.monotonic() + wait_s
    delay = POLL_FIRST_S
    found = await _claim_once(key, record, fingerprint)
    if isinstance(found, Claim | StoredResponse):
        return found
    global _waiting
    _waiting += 1
    try:
        while True:
            left_s = deadline - time.monotonic()
            if isinstance(found, Flight):
                response = await _wait_on(found, key, fingerprint, left_s)
                if response is not None:
                    return response
            elif left_s <= 0:
                raise IdempotencyKeyInUse(key)
            else:
                await asyncio.sleep(min(delay, left_s))
                delay = min(delay * 2, POLL_MAX_S)
            found = await _claim_once(key, record, fingerprint)
            if isinstance(found, Claim | StoredResponse):
                return found
    finally:
        _waiting -= 1


async def finish(claim: Claim, response: StoredResponse) -> None:
    """Keep ``response`` for EDGE_IDEMPOTENCY_TTL_S (one longer than EDGE_IDEMPOTENCY_MAX_BYTES without its
    body: a repeat gets 422) and hand it to the requests waiting on the claim. Once per claim; the write
    to Redis completes even if the caller is cancelled meanwhile."""
    if claim.ended:
        return
    claim.ended = True
    lease_keeper.drop(claim)
    if len(response.body) > settings.EDGE_IDEMPOTENCY_MAX_BYTES:
        response = response.without_body()
    completed = Completed(claim.fingerprint, response)
    local_store().complete(claim.record, claim.flight, completed, settings.EDGE_IDEMPOTENCY_TTL_S)
    await asyncio.shield(run_in_background(_save(claim, completed)))


def release(claim: Claim) -> None:
    """Free the key: the next request with it runs (of those waiting, one wins it). Synchronous, so it is
    safe in a ``finally`` after cancellation; once per claim, and nothing after ``finish()``."""
    if claim.ended:
        return
    claim.ended = True
    lease_keeper.drop(claim)
    if claim.in_redis and _loop_running():
        run_in_background(_release(claim))
    else:  # held in-process, or no loop to reach Redis from (the record there expires with its lease)
        local_store().abandon(claim.record, claim.flight)


def waiting() -> int:
    """Requests of this process waiting now on a key another request holds (for tests and monitoring)."""
    return _waiting


async def _claim_once(key: str, record: str, fingerprint: str) -> Claim | StoredResponse | Flight | None:
    """One attempt: the claim, the response, this process's flight to wait on, or None while another
    process holds the key."""
    store = local_store()
    if (flight := store.flight(record)) is not None:
        return flight
    if (completed := store.records.get(record)) is not None:  # answered by this process: no Redis needed
        return _replay(key, fingerprint, completed)
    token = secrets.token_hex(16)
    try:
        found = await redis_store.claim(record, fingerprint, token)
    except asyncio.CancelledError:
        # The script may have run: free the key now rather than when its (unrenewed) lease runs out.
        run_in_background(redis_store.release(record, token))
        raise
    if found is None:
        return _claim_locally(key, record, fingerprint, token)
    if found.outcome == redis_store.REUSED:
        raise IdempotencyKeyReused(key)
    if found.response is not None:
        return _replay(key, fingerprint, Completed(fingerprint, found.response))
    if found.outcome == redis_store.BUSY:
        return store.flight(record)  # this process's, if one of its requests won the key meanwhile
    taken = store.start(record, fingerprint)
    if isinstance(taken, Flight):
        # A request of this process took the key in-process while Redis was briefly unusable: it runs,
        # this one waits on it.
        run_in_background(redis_store.release(record, token))
        return taken
    held = Claim(record, fingerprint, token, taken.flight, in_redis=True)
    lease_keeper.hold(held)
    return held


def _claim_locally(key: str, record: str, fingerprint: str, token: str) -> Claim | StoredResponse | Flight:
    found = local_store().claim(record, fingerprint)
    if isinstance(found, Completed):
        return _replay(key, fingerprint, found)
    if isinstance(found, Flight):
        return found
    return Claim(record, fingerprint, token, found.flight, in_redis=False)


def _replay(key: str, fingerprint: str, completed: Completed) -> StoredResponse:
    """The first request's response, if this one is its repeat and the response was kept whole."""
    if completed.fingerprint != fingerprint:
        raise IdempotencyKeyReused(key)
    response = completed.response
    if response.truncated:
        raise IdempotentResponseTooLarge(key, response.header("x-request-id"))
    return response


async def _wait_on(flight: Flight, key: str, fingerprint: str, left_s: float) -> StoredResponse | None:
    """The response of this process's request in flight, or None if it released the key."""
    if flight.fingerprint != fingerprint:
        raise IdempotencyKeyReused(key)
    try:
        response = await local_store().wait(flight, left_s)
    except TimeoutError:
        raise IdempotencyKeyInUse(key) from None
    return None if response is None else _replay(key, fingerprint, Completed(fingerprint, response))


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _save(claim: Claim, completed: Completed) -> None:
    # A claim held in-process is saved too, if nobody holds the key in Redis: Redis may be back, and
    # then a repeat reaching another process is answered.
    saved = await redis_store.save(claim.record, claim.token, completed)
    if saved is False and claim.in_redis:
        logger.warning("an idempotency claim's lease ran out before its request finished (Redis unreachable "
                       "for longer than EDGE_LEASE_S?); another request held the key meanwhile")


async def _release(claim: Claim) -> None:
    try:
        await redis_store.release(claim.record, claim.token)
    finally:
        # Only now: a waiter woken before the delete would find the key still held and poll for it.
        local_store().abandon(claim.record, claim.flight)
