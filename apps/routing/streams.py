"""Streams as the attempt loop needs them: begun before they count, and bounded in time.

``open_relayable()`` opens the upstream stream and waits inside the attempt until the stream has
begun: an event with content or usage, or any event after the first (OpenAI streams open with a
role-only chunk, which tells the client nothing yet). So a stream that fails before that (a
malformed first event, an upstream that accepts and then says nothing) is retried or failed over
like any other failed call, and the client never sees it. After that, failures end the stream
(``apps.proxy.streaming`` sends the error event). Every read is bounded by the policy's idle
timeout and the whole stream by its deadline, whatever the adapter: a dribbling upstream outlives
any per-read timeout. A failure after the stream began still counts against the deployment's
breaker and health.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from apps.providers.contracts import ChatStream, StreamEvent
from apps.providers.errors import ProviderError
from apps.routing.table import RoutePolicy, Target

Batch = list[StreamEvent]
OnFailure = Callable[[ProviderError], Awaitable[None]]


async def open_relayable(
    opening: Awaitable[ChatStream], target: Target, policy: RoutePolicy, on_failure: OnFailure
) -> tuple[ChatStream, float]:
    """The opened stream, with its first batch already read, and the time that first batch took (ms)."""
    started = time.perf_counter()
    stream = await opening
    events = bounded(stream.events, target, policy)
    try:
        opening_batches = await _until_begun(events, target)
    except BaseException:
        await stream.close()
        raise
    ttft_ms = (time.perf_counter() - started) * 1000
    return ChatStream(events=_observed(opening_batches, events, on_failure), close=stream.close), ttft_ms


async def _until_begun(events: AsyncIterator[Batch], target: Target) -> list[Batch]:
    batches: list[Batch] = []
    count = 0
    async for batch in events:
        batches.append(batch)
        count += len(batch)
        if count > 1 or any(event.text or event.usage is not None for event in batch):
            return batches
    if not batches:
        raise incomplete(target)
    return batches  # a one-event stream that ended properly (the adapter raises if it did not)


async def bounded(events: AsyncIterator[Batch], target: Target, policy: RoutePolicy) -> AsyncIterator[Batch]:
    deadline = time.monotonic() + policy.stream_deadline_s
    while True:
        remaining = deadline - time.monotonic()
        idle = min(policy.stream_idle_timeout_s, remaining)
        try:
            async with asyncio.timeout(max(idle, 0.0)):
                batch = await anext(events)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise stream_timeout(target, deadline_passed=remaining <= policy.stream_idle_timeout_s) from None
        yield batch


async def _observed(
    opening_batches: list[Batch], events: AsyncIterator[Batch], on_failure: OnFailure
) -> AsyncIterator[Batch]:
    for batch in opening_batches:
        yield batch
    try:
        async for batch in events:
            yield batch
    except ProviderError as exc:
        await on_failure(exc)
        raise


def stream_timeout(target: Target, *, deadline_passed: bool) -> ProviderError:
    name = target.upstream.provider_name
    if deadline_passed:
        return ProviderError(f"The stream from provider {name} exceeded its deadline.", status=504,
                             type="timeout", code="stream_deadline_exceeded", retryable=True)
    return ProviderError(f"Provider {name} stopped sending the stream.", status=504, type="timeout",
                         code="upstream_timeout", retryable=True)


def incomplete(target: Target) -> ProviderError:
    return ProviderError(f"Provider {target.upstream.provider_name} ended the stream before it began.",
                         code="upstream_stream_incomplete", retryable=True)
