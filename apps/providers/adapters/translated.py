"""The shared base of adapters whose provider speaks its own wire format (Anthropic, Gemini, …).

A translating adapter says where to send a chat request and how to encode it, how to read the
answer, how to turn the provider's event stream into OpenAI chunks, and how to map its errors. The
transport (bounded attempts, capped reads, SSE framing, idle streams, connection reuse) is here,
once. What it produces is OpenAI's: ``chat.completion`` bodies and ``chat.completion.chunk``
events built by ``apps.providers.adapters.openai_shapes``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import httpx

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.adapters.openai_messages import UntranslatableRequest
from apps.providers.adapters.wire import (
    SHAPE_FAILURES,
    SseDecoder,
    finish_body,
    malformed_on_failure,
    read_capped,
    translate_transport_errors,
)
from apps.providers.contracts import ChatRequest, ChatResponse, ChatStream, StreamEvent, Upstream
from apps.providers.errors import ProviderError
from apps.providers.http import client_for

logger = logging.getLogger(__name__)


class StreamTranslator(Protocol):
    """Turns one provider stream, event by event, into OpenAI chunk events."""

    done: bool  # the provider said the stream is complete

    def feed(self, frame: bytes) -> list[StreamEvent]:
        """The OpenAI events for one SSE frame (``event:``/``data:`` lines, terminator stripped)."""
        ...

    def finish(self) -> list[StreamEvent]:
        """The closing events (finish chunk, usage chunk, ``[DONE]``) once the provider is done.

        Called when ``done`` turns true, or when the body ends; a stream that ended before it was
        complete raises a retryable ``ProviderError`` here.
        """
        ...


class TranslatingAdapter(ProviderAdapter):
    """One POST per chat request, JSON back or an SSE stream, translated both ways."""

    @abstractmethod
    def chat_path(self, upstream_model: str, *, stream: bool) -> str: ...

    @abstractmethod
    def headers(self) -> dict[str, str]: ...

    @abstractmethod
    def encode(self, request: ChatRequest, upstream_model: str) -> bytes:
        """The provider's request body; raises ``UntranslatableRequest`` on a parameter it cannot carry."""

    @abstractmethod
    def decode(self, content: bytes, upstream_model: str) -> ChatResponse: ...

    @abstractmethod
    def translator(self, upstream_model: str) -> StreamTranslator: ...

    @abstractmethod
    def error(self, status: int, content: bytes, headers: httpx.Headers) -> ProviderError: ...

    async def chat(self, request: ChatRequest, *, upstream_model: str) -> ChatResponse:
        content = await self.post(self.chat_path(upstream_model, stream=False), self.encoded(request, upstream_model))
        with malformed_on_failure(self.upstream.provider_name):
            return self.decode(content, upstream_model)

    def encoded(self, request: ChatRequest, upstream_model: str) -> bytes:
        """``encode()``, with a request it cannot translate refused as the client's own 400.

        The body reached the adapter as the client sent it, so a translation that fails on it is the
        request's fault: no other deployment would do better, and it must not read as a gateway bug.
        """
        try:
            return self.encode(request, upstream_model)
        except UntranslatableRequest as exc:
            raise self.invalid_request(str(exc), param=exc.param) from None
        except SHAPE_FAILURES as exc:
            logger.info("%s could not translate a request: %r", self.kind, exc)
            raise self.invalid_request(
                f"The request has a parameter of a type provider {self.upstream.provider_name} ({self.kind}) "
                "cannot be sent: check the types of messages, tools, stop and response_format."
            ) from None

    def invalid_request(self, message: str, *, param: str | None = None) -> ProviderError:
        return ProviderError(message, status=400, type="invalid_request_error", param=param, code="invalid_type",
                             retryable=False)

    async def post(self, path: str, content: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """One bounded POST whose 200 body is returned whole; anything else raises ``error()``."""
        name = self.upstream.provider_name
        with translate_transport_errors(name):
            async with asyncio.timeout(self.upstream.timeout_s):
                response = await self._send(path, content, stream=False, extra_headers=headers)
                body = await read_capped(response, name)
        if response.status_code != 200:
            raise self.error(response.status_code, body, response.headers)
        return body

    async def open_stream(self, request: ChatRequest, *, upstream_model: str) -> ChatStream:
        path = self.chat_path(upstream_model, stream=True)
        return await self.open(path, self.encoded(request, upstream_model), self.translator(upstream_model))

    async def open(
        self, path: str, content: bytes, translator: StreamTranslator, headers: Mapping[str, str] | None = None
    ) -> ChatStream:
        """One bounded POST whose 200 body is an SSE stream, read through ``translator``."""
        name = self.upstream.provider_name
        with translate_transport_errors(name):
            async with asyncio.timeout(self.upstream.timeout_s):
                response = await self._send(path, content, stream=True, extra_headers=headers)
                if response.status_code != 200:
                    body = await read_capped(response, name)
                    raise self.error(response.status_code, body, response.headers)
        return ChatStream(events=translated_events(response, translator, self.upstream), close=response.aclose)

    async def _send(
        self, path: str, content: bytes, *, stream: bool, extra_headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        client = client_for(self.upstream)
        headers = {**self.headers(), **(extra_headers or {})}
        if stream:
            headers["Accept-Encoding"] = "identity"  # streams are read raw, as they arrive
        return await client.send(client.build_request("POST", path, content=content, headers=headers), stream=True)


async def translated_events(
    response: httpx.Response, translator: StreamTranslator, upstream: Upstream
) -> AsyncIterator[list[StreamEvent]]:
    """An SSE body read through ``translator``, each event bounded by the provider's timeout."""
    name, idle_s = upstream.provider_name, upstream.timeout_s
    decoder = SseDecoder(name)
    chunks = response.aiter_raw()
    event_deadline = time.monotonic() + idle_s
    with translate_transport_errors(name), malformed_on_failure(name):
        async for chunk in chunks:
            frames = decoder.feed(chunk)
            if not frames:
                if time.monotonic() > event_deadline:  # an upstream dribbling a byte per read
                    raise TimeoutError
                continue
            event_deadline = time.monotonic() + idle_s
            events = [event for frame in frames for event in translator.feed(frame)]
            if translator.done:
                events.extend(translator.finish())
            if events:
                yield events
            if translator.done:
                await finish_body(chunks)
                return
        last = translator.feed(decoder.remainder()) if decoder.remainder().strip() else []
        if events := [*last, *translator.finish()]:
            yield events
