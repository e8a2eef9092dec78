"""Single flight: identical concurrent misses make one provider call, in one process and across two."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

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


async def first_byte_after(client: httpx.AsyncClient, url: str, body: dict[str, Any], *, delay_s: float = 0.0
                           ) -> tuple[float, int, bytes]:
    """Sent after ``delay_s``: seconds from sending to the first body byte, the status, the whole body."""
    await asyncio.sleep(delay_s)
    started = time.monotonic()
    async with client.stream("POST", url, json=body) as response:
        chunks = response.aiter_bytes()
        first = await anext(chunks, b"")
        seconds = time.monotonic() - started
        return seconds, response.status_code, first + b"".join([chunk async for chunk in chunks])


def leader_and_waiter(served: Served, leader: dict[str, Any], waiter: dict[str, Any]) -> tuple[float, int, bytes]:
    """The leader's request, then (while it is in flight) the waiter's: what the waiter saw."""

    async def both() -> tuple[float, int, bytes]:
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=0)
        async with httpx.AsyncClient(headers=served.headers(), limits=limits, timeout=20) as client:
            url = f"{served.gateway.url}{CHAT_PATH}"
            _, waited = await asyncio.gather(first_byte_after(client, url, leader),
                                             first_byte_after(client, url, waiter, delay_s=0.2))
            return waited

    return asyncio.run(both())


def test_a_waiter_never_waits_past_its_deadline(serve_cached: Callable[..., Served], fake):
    served = serve_cached(request_deadline_s=1.0)
    fake.set_rule(served.upstream_model, stream_chunks=10, chunk_delay_ms=300)  # a 3 s stream leads
    body = served.chat_body("a long story")

    seconds, status, content = leader_and_waiter(served, body | {"stream": True}, body)

    # It gave up at its deadline (the leader's stream is bound by the stream deadline, not this one).
    assert status == 504 and b"request_deadline_exceeded" in content
    assert seconds < 1.6


def test_the_wait_counts_against_the_waiters_deadline(serve_cached: Callable[..., Served], fake):
    served = serve_cached(request_deadline_s=1.0)
    fake.set_rule(served.upstream_model, latency_ms=700, fail_status=500)
    body = served.chat_body("asked twice, failing slowly")

    seconds, status, content = leader_and_waiter(served, body, body)

    # Woken at 0.5 s by the leader's failure, it had 0.5 s left for its own 0.7 s call, not 1 s.
    assert status == 504 and b"request_deadline_exceeded" in content
    assert seconds < 1.4
    assert upstream_calls(fake, served) == 2


def test_a_streaming_waiter_does_not_wait_for_a_long_answer(cached: Served, fake):
    fake.set_rule(cached.upstream_model, stream_chunks=10, chunk_delay_ms=400)  # a 4 s stream leads
    body = cached.chat_body("a long story, streamed twice", stream=True)

    seconds, status, content = leader_and_waiter(cached, body, body)

    # It waited EDGE_CACHE_STREAM_FLIGHT_WAIT_S (1 s), then streamed its own answer from the provider.
    assert status == 200 and content.rstrip().endswith(b"data: [DONE]")
    assert seconds < 2.5
    assert upstream_calls(fake, cached) == 2
