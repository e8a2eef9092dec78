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
the policy's bounds are watched only when they ask for less. Then one timer per stream does it, not
one per read (an ``asyncio.timeout`` per event batch costs a stream more than everything else this
module does): each read notes when it started, and the timer, when it fires, cancels the read only
if that read has really waited too long; otherwise it re-arms itself for the read in progress. A
steady stream thus pays one timer per idle timeout, not one per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

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
    events = BoundedEvents(stream, target, policy, on_failure)
    try:
        await events.wait_until_begun()
    except BaseException:
        await events.close()
        raise
    return ChatStream(events=events, close=events.close)


class BoundedEvents:
    """The upstream's event batches, with the buffered opening ones first, each read time-bounded."""

    def __init__(self, stream: ChatStream, target: Target, policy: RoutePolicy, on_failure: OnFailure) -> None:
        self._events, self._close, self._target, self._on_failure = stream.events, stream.close, target, on_failure
        self._loop = asyncio.get_running_loop()
        self._idle_s = policy.stream_idle_timeout_s
        self._adapter_bound_s = target.upstream.timeout_s
        self._deadline = self._loop.time() + policy.stream_deadline_s
        self._buffered: list[Batch] = []
        self._read_started = 0.0
        self._reader: asyncio.Task[Any] | None = None  # the task inside a watched read, if any
        self._watch: asyncio.TimerHandle | None = None
        self._expired = ""  # "idle" or "deadline", once the watch has cancelled a read

    def __aiter__(self) -> BoundedEvents:
        return self

    async def __anext__(self) -> Batch:
        if self._buffered:
            return self._buffered.pop(0)
        try:
            # Inlined _read() for an adapter whose bound is the tighter one: one coroutine frame less per batch.
            if min(self._idle_s, self._deadline - self._loop.time()) >= self._adapter_bound_s:
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

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        await self._close()

    async def _read(self) -> Batch:
        now = self._loop.time()
        if min(self._idle_s, self._deadline - now) >= self._adapter_bound_s:
            return await anext(self._events)  # the adapter's own bound is the tighter one
        task = asyncio.current_task()
        assert task is not None  # a coroutine awaited by the event loop always runs in a task
        self._read_started, self._reader, cancelling = now, task, task.cancelling()
        if self._watch is None:
            self._watch = self._loop.call_at(self._due(), self._check)
        try:
            return await anext(self._events)
        except asyncio.CancelledError:
            # Ours only if the watch cancelled and nobody else did too (asyncio.timeout's rule).
            if self._expired and task.uncancel() <= cancelling:
                raise stream_timeout(self._target, deadline_passed=self._expired == "deadline") from None
            raise
        finally:
            self._reader = None

    def _due(self) -> float:
        return min(self._read_started + self._idle_s, self._deadline)

    def _check(self) -> None:
        """The stream's timer: cancel the read in progress if it is overdue, else wait for it."""
        self._watch = None
        if self._reader is None:
            return  # between reads: the next read arms the timer again
        due = self._due()
        if self._loop.time() < due:
            self._watch = self._loop.call_at(due, self._check)
            return
        self._expired = "deadline" if due >= self._deadline else "idle"
        self._reader.cancel()


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
