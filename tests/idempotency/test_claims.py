"""Claims within one process, on Redis and without it: repeats get the first response, a different body
is refused, concurrent repeats wait for the first, and a released key goes to exactly one of them."""

from __future__ import annotations

import asyncio
import time

import pytest

from apps.proxy import idempotency
from apps.proxy.idempotency import Claim, StoredResponse
from tests.idempotency.conftest import eventually, new_tenant, run, stored

pytestmark = pytest.mark.usefixtures("backend")


async def claim(tenant: int, key: str = "key-1", fingerprint: str = "body-a", wait_s: float = 10.0):
    return await idempotency.claim(tenant_id=tenant, key=key, fingerprint=fingerprint, wait_s=wait_s)


def test_it_replays_the_first_response_to_a_sequential_repeat():
    tenant = new_tenant()
    first = stored('data: {"n": 1}\n\ndata: [DONE]\n\n', stream=True)

    async def scenario() -> object:
        held = await claim(tenant)
        assert isinstance(held, Claim)
        await idempotency.finish(held, first)
        return await claim(tenant)

    assert run(scenario()) == first


def test_it_refuses_the_key_with_a_different_body_once_the_first_completed():
    tenant = new_tenant()

    async def scenario() -> None:
        held = await claim(tenant)
        assert isinstance(held, Claim)
        await idempotency.finish(held, stored())
        await claim(tenant, fingerprint="body-b")

    with pytest.raises(idempotency.IdempotencyKeyReused) as refused:
        run(scenario())

    error = refused.value
    assert (error.status, error.type, error.code, error.param) == (
        422, "invalid_request_error", "idempotency_key_reused", "Idempotency-Key")


def test_it_refuses_the_key_with_a_different_body_at_once_while_the_first_is_in_flight():
    tenant = new_tenant()

    async def scenario() -> float:
        held = await claim(tenant)
        assert isinstance(held, Claim)
        started = time.monotonic()
        try:
            await claim(tenant, fingerprint="body-b", wait_s=30)
        finally:
            idempotency.release(held)
        return started

    started = time.monotonic()
    with pytest.raises(idempotency.IdempotencyKeyReused):
        run(scenario())
    assert time.monotonic() - started < 5  # refused at once, not after its 30 s wait


def test_keys_are_scoped_to_the_tenant():
    tenant, other = new_tenant(), new_tenant()

    async def scenario() -> object:
        held = await claim(tenant)
        assert isinstance(held, Claim)
        await idempotency.finish(held, stored())
        return await claim(other, fingerprint="another tenant's body")

    assert isinstance(run(scenario()), Claim)


def test_ten_concurrent_claims_make_one_owner_and_nine_replays_of_its_response():
    tenant = new_tenant()
    first = stored("the one answer")

    async def scenario() -> list[Claim | StoredResponse]:
        tasks = [asyncio.create_task(claim(tenant)) for _ in range(10)]
        await eventually(lambda: idempotency.waiting() == 9, what="nine claims waiting")
        owners = [task.result() for task in tasks if task.done()]
        assert len(owners) == 1 and isinstance(owners[0], Claim)
        await idempotency.finish(owners[0], first)
        return list(await asyncio.gather(*tasks))

    results = run(scenario())

    assert sum(isinstance(result, Claim) for result in results) == 1
    assert [result for result in results if not isinstance(result, Claim)] == [first] * 9


def test_release_lets_exactly_one_waiter_claim_next():
    tenant = new_tenant()
    second = stored("the second owner's answer")

    async def scenario() -> tuple[list[Claim | StoredResponse], Claim]:
        first_owner = await claim(tenant)
        assert isinstance(first_owner, Claim)
        tasks = [asyncio.create_task(claim(tenant)) for _ in range(9)]
        await eventually(lambda: idempotency.waiting() == 9, what="nine claims waiting")

        idempotency.release(first_owner)
        await eventually(lambda: any(task.done() for task in tasks), what="a waiter holding the key")
        await eventually(lambda: idempotency.waiting() == 8, what="eight claims waiting on it")
        owners = [task.result() for task in tasks if task.done()]
        assert len(owners) == 1 and isinstance(owners[0], Claim)
        await idempotency.finish(owners[0], second)
        return list(await asyncio.gather(*tasks)), owners[0]

    results, second_owner = run(scenario())

    assert [result for result in results if result is not second_owner] == [second] * 8


def test_a_repeat_still_waiting_when_its_wait_is_up_gets_409_with_retry_after():
    tenant = new_tenant()

    async def scenario() -> None:
        held = await claim(tenant)
        try:
            await claim(tenant, wait_s=0.3)
        finally:
            assert isinstance(held, Claim)
            idempotency.release(held)

    started = time.monotonic()
    with pytest.raises(idempotency.IdempotencyKeyInUse) as refused:
        run(scenario())

    assert time.monotonic() - started >= 0.3
    error = refused.value
    assert (error.status, error.code, error.headers) == (409, "idempotency_key_in_use", {"Retry-After": "1"})


def test_it_frees_the_key_of_a_request_cancelled_while_holding_it():
    tenant = new_tenant()

    async def request_cancelled_mid_way(holding: asyncio.Event) -> None:
        held = await claim(tenant)
        assert isinstance(held, Claim)
        try:
            holding.set()
            await asyncio.Event().wait()  # the provider call, until the client hangs up
        finally:
            idempotency.release(held)

    async def scenario() -> object:
        holding = asyncio.Event()
        task = asyncio.create_task(request_cancelled_mid_way(holding))
        await holding.wait()
        retry = asyncio.create_task(claim(tenant))
        await eventually(lambda: idempotency.waiting() == 1, what="the retry waiting")
        task.cancel()
        return await retry

    assert isinstance(run(scenario()), Claim)


def test_a_response_over_the_size_bound_is_not_replayed_and_a_repeat_gets_422(settings):
    settings.EDGE_IDEMPOTENCY_MAX_BYTES = 100
    tenant = new_tenant()

    async def scenario() -> None:
        held = await claim(tenant)
        assert isinstance(held, Claim)
        await idempotency.finish(held, stored("x" * 101))
        with pytest.raises(idempotency.IdempotencyKeyReused):
            await claim(tenant, fingerprint="body-b")
        await claim(tenant)

    with pytest.raises(idempotency.IdempotentResponseTooLarge) as refused:
        run(scenario())

    error = refused.value
    assert (error.status, error.code) == (422, "idempotency_response_too_large")
    assert "req_1" in error.message  # the first request's id, for support


def test_a_stream_the_pipeline_stopped_buffering_is_not_replayed():
    tenant = new_tenant()
    cut = StoredResponse(200, (("x-request-id", "req_1"),), b"data: {}\n\n", stream=True, truncated=True)

    async def scenario() -> None:
        held = await claim(tenant)
        assert isinstance(held, Claim)
        await idempotency.finish(held, cut)
        await claim(tenant)

    with pytest.raises(idempotency.IdempotentResponseTooLarge):
        run(scenario())


@pytest.mark.parametrize("key", ["", "k" * 256, "line\nbreak", "nul\x00", "tab\there", "del\x7f", "c1\x85"])
def test_it_refuses_a_key_too_long_or_with_control_characters(key: str):
    with pytest.raises(idempotency.InvalidIdempotencyKey) as refused:
        run(claim(new_tenant(), key=key))

    error = refused.value
    assert (error.status, error.type, error.code, error.param) == (
        400, "invalid_request_error", "invalid_value", "Idempotency-Key")


@pytest.mark.parametrize("key", ["k" * 255, "order 42/retry #1", "clé-ü"])
def test_it_takes_any_printable_key_up_to_255_characters(key: str):
    assert isinstance(run(claim(new_tenant(), key=key)), Claim)
