"""Transport helpers shared by adapters: bounded reads, SSE framing, and error translation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
from django.conf import settings

from apps.providers.errors import ProviderError


@contextlib.contextmanager
def translate_transport_errors(provider: str) -> Iterator[None]:
    """Turn timeouts and broken connections into retryable ``ProviderError``s that name no internals."""
    try:
        yield
    except (TimeoutError, httpx.TimeoutException):
        raise ProviderError(
            f"Provider {provider} did not answer in time.",
            status=504, type="timeout", code="upstream_timeout", retryable=True,
        ) from None
    except httpx.HTTPError:
        raise ProviderError(
            f"Could not complete the request to provider {provider}.",
            code="upstream_unreachable", retryable=True,
        ) from None


async def read_capped(response: httpx.Response, provider: str) -> bytes:
    """The whole body, refusing one larger than EDGE_MAX_UPSTREAM_BODY_BYTES before it fills memory."""
    limit: int = settings.EDGE_MAX_UPSTREAM_BODY_BYTES
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(provider)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise _too_large(provider)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(provider: str) -> ProviderError:
    return ProviderError(
        f"Provider {provider} sent a response larger than the gateway accepts.",
        code="upstream_response_too_large", retryable=False,
    )


async def sse_batches(response: httpx.Response, *, idle_timeout_s: float, provider: str) -> AsyncIterator[list[bytes]]:
    """Yield the complete server-sent events (without their blank-line terminators) of each read.

    Upstreams split events across TCP reads arbitrarily; this reassembles them. Events that arrive
    together are yielded together, so the relay forwards them in one write, as the upstream did:
    one write per event costs a stream more CPU than everything else the gateway does to it.
    An event that takes longer than ``idle_timeout_s`` to complete ends the stream with a timeout:
    per event, not per read, since an upstream dribbling a byte at a time outlives any per-read timeout.
    """
    buffer = b""
    chunks = response.aiter_bytes().__aiter__()
    while True:
        async with asyncio.timeout(idle_timeout_s):
            buffer, frame_end = await _read_frame(chunks, buffer, provider)
        if frame_end is None:
            break
        frames = []
        while frame_end is not None:
            start, end = frame_end
            frames.append(buffer[:start])
            buffer = buffer[end:]
            frame_end = _find_frame_end(buffer)
        yield frames
    if buffer.strip():
        yield [buffer]  # a last event without its terminator: let the caller judge it


async def _read_frame(
    chunks: AsyncIterator[bytes], buffer: bytes, provider: str
) -> tuple[bytes, tuple[int, int] | None]:
    """Read until ``buffer`` holds a whole event; no frame end means the body ended first."""
    while len(buffer) <= settings.EDGE_MAX_UPSTREAM_BODY_BYTES:  # one event must not fill memory either
        try:
            buffer += await chunks.__anext__()
        except StopAsyncIteration:
            return buffer, None
        if (frame_end := _find_frame_end(buffer)) is not None:
            return buffer, frame_end
    raise _too_large(provider)


def _find_frame_end(buffer: bytes) -> tuple[int, int] | None:
    lf, crlf = buffer.find(b"\n\n"), buffer.find(b"\r\n\r\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, crlf + 4
    return (lf, lf + 2) if lf >= 0 else None


def parse_retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from LLM providers; treat as unknown
