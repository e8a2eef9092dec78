"""How long records live: a completed one for EDGE_IDEMPOTENCY_TTL_S (in Redis and in-process), one in
flight for its lease, and one whose request was cancelled while claiming it not at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio
from django.conf import settings

from apps.proxy import idempotency
from apps.proxy.idempotency import Claim, local
from apps.proxy.idempotency.redis_store import record_key
from tests.idempotency.conftest import eventually, new_tenant, run, stored

DAY_S = 24 * 60 * 60


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def redis_ttl_s(tenant: int, key: str) -> float:
    client = redis.Redis.from_url(str(settings.REDIS_URL))
    try:
        return int(client.pttl(record_key(tenant, key))) / 1000
    finally:
        client.close()


@pytest.mark.usefixtures("fresh_state")
def test_a_completed_record_in_redis_is_kept_for_24_hours_and_one_in_flight_for_its_lease():
    tenant = new_tenant()
    assert settings.EDGE_IDEMPOTENCY_TTL_S == DAY_S
    ttls: list[float] = []

    async def scenario() -> None:
        held = await idempotency.claim(tenant_id=tenant, key="k", fingerprint="f", wait_s=1)
        assert isinstance(held, Claim)
        ttls.append(redis_ttl_s(tenant, "k"))
        await idempotency.finish(held, stored())
        ttls.append(redis_ttl_s(tenant, "k"))

    run(scenario())

    in_flight, completed = ttls
    assert settings.EDGE_LEASE_S - 5 < in_flight <= settings.EDGE_LEASE_S
    assert DAY_S - 60 < completed <= DAY_S


def test_an_in_process_record_is_gone_once_its_ttl_has_passed(settings, monkeypatch):
    settings.REDIS_URL = None
    clock = Clock()
    monkeypatch.setattr(local, "_local", local.LocalStore(settings.EDGE_IDEMPOTENCY_LOCAL_MAX_BYTES, clock=clock))
    tenant = new_tenant()

    async def claim() -> object:
        return await idempotency.claim(tenant_id=tenant, key="k", fingerprint="f", wait_s=1)

    async def scenario() -> tuple[object, object]:
        held = await claim()
        assert isinstance(held, Claim)
        await idempotency.finish(held, stored())
        clock.now += DAY_S - 1
        just_before = await claim()
        clock.now += 2
        return just_before, await claim()

    just_before, after = run(scenario())

    assert just_before == stored()
    assert isinstance(after, Claim)


@pytest.mark.usefixtures("fresh_state")
def test_a_request_cancelled_while_its_claim_is_on_the_way_does_not_leave_the_key_held(settings, monkeypatch):
    settings.REDIS_TIMEOUT_S = 10.0  # the reply below is held back on purpose: not a Redis failure
    tenant = new_tenant()
    original = redis.asyncio.Redis.eval
    scripts_run: list[object] = []

    async def reply_after_the_client_left(self: redis.asyncio.Redis, *args: Any) -> Any:
        reply = await original(self, *args)
        if not scripts_run:
            scripts_run.append(reply)
            await asyncio.Event().wait()
        return reply

    monkeypatch.setattr(redis.asyncio.Redis, "eval", reply_after_the_client_left)

    async def scenario() -> object:
        first = asyncio.create_task(idempotency.claim(tenant_id=tenant, key="k", fingerprint="f", wait_s=1))
        await eventually(lambda: bool(scripts_run), what="the claim script run in Redis")
        first.cancel()
        return await idempotency.claim(tenant_id=tenant, key="k", fingerprint="f", wait_s=2)

    assert isinstance(run(scenario()), Claim)  # not 409 until the first claim's lease (30 s) ran out
