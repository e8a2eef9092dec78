"""Relaying an upstream stream to the client, chunk by chunk, and accounting for it at the end.

Whatever ends the stream (completion, an upstream failure, the client hanging up) ends in exactly
one ledger row. Usage comes from the upstream's usage chunk; if it never arrived (the stream was
cut, or the client left first), it is estimated from what was relayed and marked so. A stream that
completed is stored in the response cache (if its policy caches), assembled into one completion.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
from django.http import StreamingHttpResponse

from apps.billing.models import LedgerEntry
from apps.providers.contracts import ChatRequest, ChatStream, CompletionRequest
from apps.providers.errors import OpenAIError, ProviderError
from apps.providers.tokens import estimate_usage, usage_or_estimate
from apps.proxy.cache.service import NO_CACHE, CacheLookup
from apps.proxy.errors import unexpected
from apps.proxy.exchange import Exchange

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that hung up; no response was completed
ErrorFrame = Callable[[OpenAIError], bytes]  # a failure after the stream began, in the endpoint's own shape


def openai_error_frame(error: OpenAIError) -> bytes:
    """Headers are gone already: the error travels as an event, the way OpenAI reports one."""
    return b"data: " + orjson.dumps(error.body()) + b"\n\n"


def streaming_response(
    exchange: Exchange, chat: ChatRequest | CompletionRequest, stream: ChatStream, cache: CacheLookup = NO_CACHE,
    *, error_frame: ErrorFrame = openai_error_frame,
) -> StreamingHttpResponse:
    events = relay(exchange, chat, stream, cache, error_frame=error_frame)
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx would otherwise buffer the stream
    return response


async def relay(
    exchange: Exchange, chat: ChatRequest | CompletionRequest, stream: ChatStream, cache: CacheLookup = NO_CACHE,
    *, error_frame: ErrorFrame = openai_error_frame,
) -> AsyncIterator[bytes]:
    relayed: list[str] = []
    status, http_status, error_type = LedgerEntry.Status.OK, 200, ""
    assembler = cache.capture()  # None unless the completed stream is to be cached
    try:
        async for batch in stream.events:
            frames = []
            for event in batch:
                if assembler is not None:
                    assembler.feed(event.frame)
                if event.usage is not None:
                    exchange.usage = event.usage
                if event.text:
                    relayed.append(event.text)
                if not (event.usage_only and not chat.include_usage):
                    frames.append(event.frame)  # the usage chunk only if the client asked for it
            if relayed and exchange.ttft_ms is None:
                exchange.ttft_ms = exchange.elapsed_ms()
            if frames:
                yield b"".join(frames)
    except (asyncio.CancelledError, GeneratorExit):
        status, http_status = LedgerEntry.Status.CANCELLED, CLIENT_CLOSED_REQUEST
        raise
    except Exception as exc:
        error = exc if isinstance(exc, ProviderError) else unexpected(exc)
        status, error_type = LedgerEntry.Status.ERROR, error.code or error.type
        yield error_frame(error)  # the only error frame the client gets
    finally:
        # Recorded before any await: a cancelled task may not get to run another one.
        exchange.usage = usage_or_estimate(exchange.usage, lambda: estimate_usage(chat.body, "".join(relayed)))
        exchange.finish(status=status, http_status=http_status, error_type=error_type)
        cache.store_stream(exchange, completed=status == LedgerEntry.Status.OK)
        await stream.close()
