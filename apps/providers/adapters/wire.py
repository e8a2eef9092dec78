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
    """The whole body, refusing one larger than EDGE_MAX_UPSTREAM_BODY_BYTES before it fills memory.

    The response is closed either way: read to its end, its connection goes back to the pool.
    """
    try:
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
    finally:
        await response.aclose()


# What reading a body raises on a value of a shape no check foresaw (a string where it walks an
# object, a word where it expects a count): the request's fault going up, the provider's coming back.
SHAPE_FAILURES = (AttributeError, TypeError, ValueError, KeyError, IndexError)


@contextlib.contextmanager
def malformed_on_failure(provider: str) -> Iterator[None]:
    """Reading a provider's answer or event: one of an unforeseen shape is malformed, not a gateway bug."""
    try:
        yield
    except SHAPE_FAILURES:
        raise malformed_response(provider) from None


def malformed_response(provider: str) -> ProviderError:
    """An answer, or a stream event, that is not what the provider's format promises: another may do better."""
    return ProviderError(f"Provider {provider} sent a response the gateway could not read.",
                         code="upstream_malformed_response", retryable=True)


def stream_incomplete(provider: str) -> ProviderError:
    return ProviderError(f"Provider {provider} ended the stream before it was complete.",
                         code="upstream_stream_incomplete", retryable=True)


def mid_stream_error(provider: str, message: object = None, code: object = None) -> ProviderError:
    """The provider's own error event in a stream it had accepted (``code``: its error type, if it gave one)."""
    detail = f": {message}" if message else ""
    return ProviderError(f"Provider {provider} reported an error mid-stream{detail}.",
                         code=str(code or "upstream_error"), retryable=False)


def _too_large(provider: str) -> ProviderError:
    return ProviderError(
        f"Provider {provider} sent a response larger than the gateway accepts.",
        code="upstream_response_too_large", retryable=False,
    )


class SseDecoder:
    """Reassembles server-sent events from reads that split them anywhere.

    ``feed()`` returns the events a read completed, without their blank-line terminators. An event
    growing past EDGE_MAX_UPSTREAM_BODY_BYTES is refused, so a broken upstream cannot fill memory.
    Synchronous on purpose: one async generator layer per event costs a stream more than the decoding.
    """

    def __init__(self, provider: str) -> None:
        self._buffer = b""
        self._provider = provider
        self._limit: int = settings.EDGE_MAX_UPSTREAM_BODY_BYTES

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        frames = []
        while (frame_end := _find_frame_end(buffer)) is not None:
            start, end = frame_end
            frames.append(buffer[:start])
            buffer = buffer[end:]
        if len(buffer) > self._limit:
            raise _too_large(self._provider)
        self._buffer = buffer
        return frames

    def remainder(self) -> bytes:
        """What is left when the body ends: a last event without its terminator, or nothing."""
        return self._buffer


async def finish_body(chunks: AsyncIterator[bytes], timeout_s: float = 1.0) -> None:
    """Read what follows ``[DONE]`` (the chunked body's terminator, normally in the same read).

    A response read to its end returns its connection to the pool; one closed early is torn down,
    and the next stream pays for a new TCP connection. An upstream that never ends its body after
    ``[DONE]`` gets ``timeout_s`` and then its connection closed.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            async for _ in chunks:
                pass


def sse_data(frame: bytes) -> bytes:
    """The data of one SSE frame (its ``data:`` lines joined); b"" for comments and keep-alives."""
    return b"\n".join(line[5:].lstrip() for line in frame.splitlines() if line.startswith(b"data:"))


def _find_frame_end(buffer: bytes) -> tuple[int, int] | None:
    lf, crlf = buffer.find(b"\n\n"), buffer.find(b"\r\n\r\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, crlf + 4
    return (lf, lf + 2) if lf >= 0 else None


def reported_tokens(value: object) -> int:
    """A token count as a provider reported it: a whole number passes as is (however large: usage is
    judged against the request later, apps.proxy.usage_bounds); anything else (a fraction, text, a
    list) is -1, which is never believed."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return -1
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return -1


def tokens_together(*counts: int) -> int:
    """Several reported counts as one (Anthropic's input plus cache reads and writes): -1 if any is."""
    return -1 if any(count < 0 for count in counts) else sum(counts)


def parse_retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from LLM providers; treat as unknown
