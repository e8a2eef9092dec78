"""Redis refusing connections or failing in ways redis-py does not name: claims fall back to the
in-process store, keep its guarantee within the process, and raise nothing but the client's errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis
import redis.asyncio
from django.conf import settings

from apps.proxy import idempotency
from apps.proxy.idempotency import Claim, StoredResponse
from apps.proxy.idempotency.redis_store import record_key
from tests.harness.gateway import free_port
from tests.idempotency.conftest import eventually, new_tenant, run, stored

pytestmark = pytest.mark.usefixtures("fresh_state")


async def concurrent_repeats(tenant: int) -> list[Claim | StoredResponse]:
    """Ten claims at once; the one that holds the key finishes once the nine others wait."""
    tasks = [asyncio.create_task(idempotency.claim(tenant_id=tenant, key="k", fingerprint="f", wait_s=10))
             for _ in range(10)]
    await eventually(lambda: idempotency.waiting() == 9, what="nine claims waiting")
    owner = next(task.result() for task in tasks if task.done())
    assert isinstance(owner, Claim)
    await idempotency.finish(owner, stored())
    with pytest.raises(idempotency.IdempotencyKeyReused):
        await idempotency.claim(tenant_id=tenant, key="k", fingerprint="other", wait_s=1)
    return list(await asyncio.gather(*tasks))


def assert_one_owner_in_process(results: list[Claim | StoredResponse]) -> None:
    owners = [result for result in results if isinstance(result, Claim)]
    assert len(owners) == 1 and not owners[0].in_redis
    assert [result for result in results if not isinstance(result, Claim)] == [stored()] * 9


def test_with_redis_refusing_connections_claims_hold_within_the_process(settings: Any):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    results = run(concurrent_repeats(new_tenant()))

    assert_one_owner_in_process(results)


def test_with_redis_raising_what_redis_py_does_not_name_claims_hold_within_the_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    async def broken_eval(self: redis.asyncio.Redis, *args: Any) -> Any:
        raise RuntimeError("a client in a state nobody expected")

    monkeypatch.setattr(redis.asyncio.Redis, "eval", broken_eval)

    with caplog.at_level(logging.WARNING, logger="edge_project.redis_clients"):
        results = run(concurrent_repeats(new_tenant()))

    assert_one_owner_in_process(results)
    assert "using in-process state" in caplog.text and "RuntimeError" in caplog.text


def test_a_record_in_redis_this_release_cannot_read_falls_back_instead_of_failing_the_request():
    tenant = new_tenant()
    client = redis.Redis.from_url(str(settings.REDIS_URL))
    try:
        client.hset(record_key(tenant, "k"), mapping={"fp": "f", "resp": b"not a stored response"})
        client.expire(record_key(tenant, "k"), 60)
    finally:
        client.close()

    found = run(idempotency.claim(tenant_id=tenant, key="k", fingerprint="f", wait_s=1))

    assert isinstance(found, Claim) and not found.in_redis
