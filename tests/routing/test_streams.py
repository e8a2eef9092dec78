"""Stream bounds in-process: the policy's idle timeout and deadline end a stalled stream, through one
timer per stream rather than one per read."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from apps.providers.contracts import ChatStream, StreamEvent
from apps.providers.errors import ProviderError
from apps.routing.streams import open_relayable
from apps.routing.table import RoutePolicy, Target
from tests.routing.test_strategies import target

DEFAULTS = RoutePolicy()  # idle 30 s: stricter than the provider's 60 s, so the policy's bound is watched


def provider(timeout_s: float = 60) -> Target:
    only = target(1)
    return dataclasses.replace(only, upstream=dataclasses.replace(only.upstream, timeout_s=timeout_s))


Batches = AsyncIterator[list[StreamEvent]]


async def batches(count: int, *, gap_s: float = 0.0, stall_after: int | None = None) -> Batches:
    for index in range(count):
        if index == stall_after:
            await asyncio.sleep(3600)
        await asyncio.sleep(gap_s)
        yield [StreamEvent(frame=b"data: {}\n\n", text=f"t{index}")]


async def relay(events: AsyncIterator[list[StreamEvent]], policy: RoutePolicy, bound: Target) -> list[str]:
    failures: list[ProviderError] = []

    async def on_failure(error: ProviderError) -> None:
        failures.append(error)

    async def close() -> None:
        return None

    stream = await open_relayable(_opened(ChatStream(events=events, close=close)), bound, policy, on_failure)
    try:
        return [batch[0].text async for batch in stream.events]
    finally:
        await stream.close()


async def _opened(stream: ChatStream) -> ChatStream:
    return stream


def test_a_stream_pays_no_timer_per_batch_with_default_settings(monkeypatch: pytest.MonkeyPatch):
    armed: list[float] = []

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        call_at = loop.call_at

        def counted(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            armed.append(when)
            return call_at(when, *args, **kwargs)

        monkeypatch.setattr(loop, "call_at", counted)
        return await relay(batches(200), DEFAULTS, provider())

    assert len(asyncio.run(scenario())) == 200
    assert len(armed) <= 1


def test_a_stream_that_stalls_past_the_idle_timeout_ends_with_upstream_timeout():
    policy = dataclasses.replace(DEFAULTS, stream_idle_timeout_s=0.1)

    async def scenario() -> ProviderError:
        with pytest.raises(ProviderError) as caught:
            await relay(batches(50, gap_s=0.01, stall_after=20), policy, provider())
        return caught.value

    assert asyncio.run(scenario()).code == "upstream_timeout"


def test_a_stream_slower_than_its_deadline_ends_with_stream_deadline_exceeded():
    policy = dataclasses.replace(DEFAULTS, stream_idle_timeout_s=0.1, stream_deadline_s=0.3)

    async def scenario() -> ProviderError:
        with pytest.raises(ProviderError) as caught:
            await relay(batches(100, gap_s=0.02), policy, provider())  # never idle, but too long
        return caught.value

    assert asyncio.run(scenario()).code == "stream_deadline_exceeded"


def test_a_client_that_leaves_mid_stream_is_still_cancelled_not_timed_out():
    async def scenario() -> None:
        reading = asyncio.ensure_future(relay(batches(50, stall_after=5), DEFAULTS, provider()))
        await asyncio.sleep(0.05)
        reading.cancel()
        await reading

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())
