"""Single flight: identical concurrent misses make one provider call, in one process and across two."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from tests.cache.conftest import upstream_calls
from tests.conftest import wait_until_served
from tests.harness.gateway import GatewayProcess
from tests.harness.load import Answer, post_concurrently
from tests.harness.served import CHAT_PATH, Served, wait_for_rows

pytestmark = pytest.mark.usefixtures("live_db")

PROVIDER_LATENCY_MS = 400  # long enough for every request to arrive while the first is in flight


def test_100_concurrent_identical_cold_requests_make_one_provider_call(cached: Served, fake):
    fake.set_rule(cached.upstream_model, latency_ms=PROVIDER_LATENCY_MS)

    url = f"{cached.gateway.url}{CHAT_PATH}"
    answers = asyncio.run(post_concurrently(url, cached.raw_key, cached.chat_body(), 100))

    assert [answer.status for answer in answers] == [200] * 100
    assert len({answer.body for answer in answers}) == 1
    assert upstream_calls(fake, cached) == 1
    rows = wait_for_rows(answer.request_id for answer in answers if answer.request_id)
    assert Counter(row.cache_status for row in rows.values()) == {"miss": 1, "hit-l1": 99}


def test_concurrent_identical_streams_share_one_provider_call(cached: Served, fake):
    fake.set_rule(cached.upstream_model, latency_ms=PROVIDER_LATENCY_MS)
    client = cached.async_client()

    async def one_stream() -> str:
        stream = await client.chat.completions.create(
            model=cached.model, messages=[{"role": "user", "content": "stream it once"}], stream=True
        )
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

    async def streams() -> list[str]:
        return list(await asyncio.gather(*(one_stream() for _ in range(20))))

    texts = asyncio.run(streams())

    assert len(set(texts)) == 1 and texts[0].startswith("Mock reply to: stream it once")
    assert upstream_calls(fake, cached) == 1


def test_a_failed_leader_wakes_its_waiters_at_once(cached: Served, fake):
    fake.set_rule(cached.upstream_model, latency_ms=PROVIDER_LATENCY_MS, fail_status=500)
    started = time.monotonic()

    answers = asyncio.run(post_concurrently(f"{cached.gateway.url}{CHAT_PATH}", cached.raw_key, cached.chat_body(), 10))

    # Each waiter makes its own call once the leader fails, as it would without the cache; nobody
    # waits out EDGE_CACHE_FLIGHT_WAIT_S (30 s).
    assert time.monotonic() - started < 5
    assert all(answer.status == 502 and answer.is_openai_error for answer in answers)
    assert upstream_calls(fake, cached) == 10


def test_identical_requests_on_two_gateway_processes_make_one_provider_call(
    cached: Served, fake, second_gateway: GatewayProcess
):
    wait_until_served(second_gateway.url, cached.raw_key, cached.model)
    fake.set_rule(cached.upstream_model, latency_ms=PROVIDER_LATENCY_MS)
    body = cached.chat_body("asked of two processes at once")

    async def both() -> tuple[list[Answer], list[Answer]]:
        return await asyncio.gather(
            post_concurrently(f"{cached.gateway.url}{CHAT_PATH}", cached.raw_key, body, 20),
            post_concurrently(f"{second_gateway.url}{CHAT_PATH}", cached.raw_key, body, 20),
        )

    here, there = asyncio.run(both())

    answers = [*here, *there]
    assert [answer.status for answer in answers] == [200] * 40
    assert len({answer.body for answer in answers}) == 1
    assert upstream_calls(fake, cached) == 1


def test_waiting_for_an_identical_request_is_not_counted_as_gateway_overhead(cached: Served, fake):
    fake.set_rule(cached.upstream_model, latency_ms=PROVIDER_LATENCY_MS)

    async def ask_together() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=10, max_keepalive_connections=0)
        async with httpx.AsyncClient(headers=cached.headers(), limits=limits, timeout=10) as client:
            url = f"{cached.gateway.url}{CHAT_PATH}"
            return list(await asyncio.gather(*(client.post(url, json=cached.chat_body()) for _ in range(10))))

    responses = asyncio.run(ask_together())

    waiters = [response for response in responses if response.headers["x-edge-cache"] == "hit-l1"]
    assert len(waiters) == 9
    assert all(float(response.headers["x-edge-overhead-ms"]) < PROVIDER_LATENCY_MS / 4 for response in waiters)


def test_a_leader_whose_client_hangs_up_wakes_its_waiters(cached: Served, fake):
    fake.set_rule(cached.upstream_model, latency_ms=1000)
    url = f"{cached.gateway.url}{CHAT_PATH}"

    async def leader_leaves_waiter_stays() -> tuple[float, int]:
        async with httpx.AsyncClient(headers=cached.headers(), timeout=10) as client:
            async def impatient() -> None:
                with pytest.raises(httpx.ReadTimeout):
                    await client.post(url, json=cached.chat_body(), timeout=0.3)

            async def patient() -> tuple[float, int]:
                await asyncio.sleep(0.1)  # arrives while the impatient one leads
                started = time.monotonic()
                response = await client.post(url, json=cached.chat_body())
                return time.monotonic() - started, response.status_code

            _, (waited, status) = await asyncio.gather(impatient(), patient())
            return waited, status

    waited, status = asyncio.run(leader_leaves_waiter_stays())

    # It asked the provider itself once the leader was gone (about 0.2 s + 1 s), instead of waiting
    # out EDGE_CACHE_FLIGHT_WAIT_S (30 s) for an answer that was never coming.
    assert status == 200
    assert waited < 5
