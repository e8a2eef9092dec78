"""Streams as the attempt loop needs them: begun before they count, and bounded in time.

``open_relayable()`` opens the upstream stream and waits inside the attempt until the stream has
begun: an event that is not ``opening`` (adapters mark the frames that tell the client nothing yet,
such as OpenAI's role-only chunk and Anthropic's message_start and ping; content, usage and tool
calls never are). So a stream that fails before that (a malformed first event, an upstream that
accepts and then says nothing) is retried or failed over like any other failed call, and the
client never sees it. After that, failures end the stream
(``apps.proxy.streaming`` sends the error event) and still count against the deployment's breaker
and health.

Every read is bounded by the policy's idle timeout and the whole stream by its deadline, whatever
the adapter. Adapters already bound each read by the provider's ``timeout_s`` (their contract), so
a timer is armed for a read only when the policy asks for less: a timer per event batch costs a
stream more than everything else this module does.
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
) -> ChatStream:
    """The opened stream, its opening events already read (and replayed to whoever iterates it)."""
    stream = await opening
    events = BoundedEvents(stream.events, target, policy, on_failure)
    try:
        await events.wait_until_begun()
    except BaseException:
        await stream.close()
        raise
    return ChatStream(events=events, close=stream.close)


class BoundedEvents:
    """The upstream's event batches, with the buffered opening ones first, each read time-bounded."""

    def __init__(self, events: AsyncIterator[Batch], target: Target, policy: RoutePolicy,
                 on_failure: OnFailure) -> None:
        self._events, self._target, self._on_failure = events, target, on_failure
        self._idle_s = policy.stream_idle_timeout_s
        self._adapter_bound_s = target.upstream.timeout_s
        self._deadline = time.monotonic() + policy.stream_deadline_s
        self._buffered: list[Batch] = []

    def __aiter__(self) -> BoundedEvents:
        return self

    async def __anext__(self) -> Batch:
        if self._buffered:
            return self._buffered.pop(0)
        try:
            # Inlined _read() for the common case: one coroutine frame less per batch.
            if min(self._idle_s, self._deadline - time.monotonic()) >= self._adapter_bound_s:
                return await self._events.__anext__()
            return await self._read()
        except ProviderError as exc:
            await self._on_failure(exc)
            raise

    async def wait_until_begun(self) -> None:
        while True:
            try:
                batch = await self._read()
            except StopAsyncIteration:
                if not self._buffered:
                    raise incomplete(self._target) from None
                return  # a stream that ended properly within its opening events (the adapter checks)
            self._buffered.append(batch)
            if not all(event.opening for event in batch):
                return

    async def _read(self) -> Batch:
        remaining = self._deadline - time.monotonic()
        limit = min(self._idle_s, remaining)
        if limit >= self._adapter_bound_s:
            return await anext(self._events)  # the adapter's own bound is the tighter one
        try:
            async with asyncio.timeout(max(limit, 0.0)):
                return await anext(self._events)
        except TimeoutError:
            raise stream_timeout(self._target, deadline_passed=remaining <= self._idle_s) from None


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
