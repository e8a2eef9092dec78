"""Relaying an upstream stream to the client, chunk by chunk, and accounting for it at the end.

Whatever ends the stream (completion, an upstream failure, the client hanging up) ends in exactly
one ledger row. Usage comes from the upstream's usage chunk; if it never arrived (the stream was
cut, or the client left first), it is estimated from what was relayed and marked so. A stream that
completed is stored in the response cache (if its policy caches), assembled into one completion.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from django.http import StreamingHttpResponse

from apps.billing.models import LedgerEntry
from apps.providers.contracts import ChatStream
from apps.providers.errors import ProviderError
from apps.proxy.cache.service import NO_CACHE, CacheLookup
from apps.proxy.errors import unexpected
from apps.proxy.exchange import Exchange

if TYPE_CHECKING:
    from apps.proxy.endpoint import ClientRequest, Endpoint

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that hung up; no response was completed


def streaming_response(
    exchange: Exchange, endpoint: Endpoint[Any], call: ClientRequest, stream: ChatStream,
    cache: CacheLookup = NO_CACHE,
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(relay(exchange, endpoint, call, stream, cache), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx would otherwise buffer the stream
    return response


async def relay(
    exchange: Exchange, endpoint: Endpoint[Any], call: ClientRequest, stream: ChatStream,
    cache: CacheLookup = NO_CACHE,
) -> AsyncIterator[bytes]:
    relayed: list[str] = []
    status, http_status, error_type = LedgerEntry.Status.OK, 200, ""
    assembler = cache.capture()  # None unless the completed stream is to be cached
    reported = exchange.usage
    try:
        async for batch in stream.events:
            frames = []
            for event in batch:
                if assembler is not None:
                    assembler.feed(event.frame)
                if event.usage is not None:
                    reported = event.usage
                if event.text:
                    relayed.append(event.text)
                if not (event.usage_only and not call.include_usage):
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
        yield endpoint.stream_error_frame(call, error)  # the only error frame the client gets
    finally:
        # Recorded before any await: a cancelled task may not get to run another one.
        exchange.account(reported, lambda: endpoint.estimate_stream(call, "".join(relayed)))
        exchange.finish(status=status, http_status=http_status, error_type=error_type)
        cache.store_stream(exchange, completed=status == LedgerEntry.Status.OK)
        await stream.close()
