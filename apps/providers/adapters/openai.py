"""Adapters for upstreams that speak OpenAI's own wire format: OpenAI and OpenAI-compatible servers.

``OpenAIWireAdapter`` is the base of every OpenAI-wire kind (Azure OpenAI's is in ``azure.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import orjson

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.adapters.openai_responses import ResponsesEvents, responses_body, usage_of_response
from apps.providers.adapters.openai_shapes import DONE_FRAME
from apps.providers.adapters.translated import translated_events
from apps.providers.adapters.wire import (
    SseDecoder,
    finish_body,
    malformed_on_failure,
    malformed_response,
    mid_stream_error,
    parse_retry_after,
    read_capped,
    reported_tokens,
    sse_data,
    stream_incomplete,
    translate_transport_errors,
)
from apps.providers.contracts import (
    ChatRequest,
    ChatResponse,
    ChatStream,
    CompletionRequest,
    EmbeddingsRequest,
    StreamEvent,
    Usage,
)
from apps.providers.errors import ProviderError
from apps.providers.http import client_for

# Client errors the provider judged on the request itself: the client gets them as they are.
_PASSED_THROUGH = {400, 404, 409, 413, 422}


class OpenAIWireAdapter(ProviderAdapter):
    """Shared by every upstream that speaks OpenAI's ``POST {base_url}/chat/completions`` and its kin.

    Subclasses change where requests go (``path()``) and how the gateway authenticates
    (``headers()``); the bodies, the stream and the errors are OpenAI's throughout.
    """

    def path(self, endpoint: str, upstream_model: str) -> str:
        """The request path for ``endpoint`` ("chat/completions", "completions", "embeddings")."""
        return f"/{endpoint}"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self.upstream.headers}
        if self.upstream.api_key:
            headers["Authorization"] = f"Bearer {self.upstream.api_key}"
        return headers

    def encode(self, request: ChatRequest | CompletionRequest, upstream_model: str) -> bytes:
        body: dict[str, Any] = {**request.body, "model": upstream_model}
        if request.stream:
            # Always ask for usage, or streamed requests would be billed from estimates.
            body["stream_options"] = {**(request.body.get("stream_options") or {}), "include_usage": True}
        return orjson.dumps(body)

    async def chat(self, request: ChatRequest, *, upstream_model: str) -> ChatResponse:
        path = self.path("chat/completions", upstream_model)
        return await self._answer(path, self.encode(request, upstream_model))

    async def open_stream(self, request: ChatRequest, *, upstream_model: str) -> ChatStream:
        path = self.path("chat/completions", upstream_model)
        return await self._open(path, self.encode(request, upstream_model))

    async def completions(self, request: CompletionRequest, *, upstream_model: str) -> ChatResponse:
        path = self.path("completions", upstream_model)
        return await self._answer(path, self.encode(request, upstream_model))

    async def open_completion_stream(self, request: CompletionRequest, *, upstream_model: str) -> ChatStream:
        path = self.path("completions", upstream_model)
        return await self._open(path, self.encode(request, upstream_model))

    async def embeddings(self, request: EmbeddingsRequest, *, upstream_model: str) -> ChatResponse:
        content = orjson.dumps({**request.body, "model": upstream_model})
        return await self._answer(self.path("embeddings", upstream_model), content, usage_of=usage_of_embeddings)

    async def _answer(
        self, path: str, content: bytes, usage_of: Callable[[bytes, str], Usage] | None = None
    ) -> ChatResponse:
        name = self.upstream.provider_name
        with translate_transport_errors(name):
            async with asyncio.timeout(self.upstream.timeout_s):
                response = await self._send(path, content, stream=False)
                body = await read_capped(response, name)
        if response.status_code != 200:
            raise error_from_response(response.status_code, body, response.headers, name)
        with malformed_on_failure(name):
            return ChatResponse(content=body, usage=(usage_of or usage_of_completion)(body, name))

    async def _open(
        self, path: str, content: bytes,
        read: Callable[[httpx.Response], AsyncIterator[list[StreamEvent]]] | None = None,
    ) -> ChatStream:
        name = self.upstream.provider_name
        with translate_transport_errors(name):
            async with asyncio.timeout(self.upstream.timeout_s):
                response = await self._send(path, content, stream=True)
                if response.status_code != 200:
                    body = await read_capped(response, name)
                    raise error_from_response(response.status_code, body, response.headers, name)
        return ChatStream(events=(read or self._events)(response), close=response.aclose)

    async def _send(self, path: str, content: bytes, *, stream: bool) -> httpx.Response:
        client = client_for(self.upstream)
        headers = self.headers()
        if stream:
            headers["Accept-Encoding"] = "identity"  # streams are read raw, as they arrive: no decoding
        outgoing = client.build_request("POST", path, content=content, headers=headers)
        return await client.send(outgoing, stream=True)

    def chunk_event(self, frame: bytes) -> StreamEvent | None:
        return chunk_event(frame, self.upstream.provider_name)

    async def _events(self, response: httpx.Response) -> AsyncIterator[list[StreamEvent]]:
        name, idle_s = self.upstream.provider_name, self.upstream.timeout_s
        decoder = SseDecoder(name)
        chunks = response.aiter_raw()
        event_deadline = time.monotonic() + idle_s
        with translate_transport_errors(name), malformed_on_failure(name):
            async for chunk in chunks:
                frames = decoder.feed(chunk)
                if not frames:
                    # httpx bounds each read by the timeout; this bounds an upstream that dribbles
                    # a byte per read, which would otherwise stretch one event forever.
                    if time.monotonic() > event_deadline:
                        raise TimeoutError
                    continue
                event_deadline = time.monotonic() + idle_s
                events = [event for frame in frames if (event := self.chunk_event(frame)) is not None]
                if events:
                    yield events
                if any(event.frame is DONE_FRAME for event in events):
                    await finish_body(chunks)
                    return
            last = self.chunk_event(decoder.remainder()) if decoder.remainder().strip() else None
            if last is not None:
                yield [last]
                if last.frame is DONE_FRAME:
                    return
        raise stream_incomplete(name)


class OpenAIAdapter(OpenAIWireAdapter):
    kind = "openai"

    async def responses(self, body: Mapping[str, Any], *, upstream_model: str) -> ChatResponse:
        """A Responses API request relayed as it is (``/v1/responses``); the answer is OpenAI's ``response``."""
        content = responses_body(body, upstream_model)
        return await self._answer(self.path("responses", upstream_model), content, usage_of=usage_of_response)

    async def open_responses_stream(self, body: Mapping[str, Any], *, upstream_model: str) -> ChatStream:
        """The same, streamed: the Responses events relayed unchanged."""
        events = ResponsesEvents(self.upstream.provider_name)
        return await self._open(self.path("responses", upstream_model), responses_body(body, upstream_model),
                                read=lambda response: translated_events(response, events, self.upstream))


class OpenAICompatibleAdapter(OpenAIWireAdapter):
    """vLLM, Ollama, Groq, Together, Mistral, DeepSeek…: custom headers, and auth only if a key is set."""

    kind = "openai_compatible"


def chunk_event(frame: bytes, provider: str) -> StreamEvent | None:
    """One OpenAI SSE frame as a StreamEvent; comments and blank frames are dropped."""
    # The usual single-line event is sliced, without the general parse.
    data = frame[6:] if frame.startswith(b"data: ") and b"\n" not in frame else sse_data(frame)
    if not data:
        return None
    if data == b"[DONE]":
        return StreamEvent(frame=DONE_FRAME)
    chunk = _json_object(data, provider)
    if "error" in chunk:
        error = chunk["error"] if isinstance(chunk["error"], dict) else {}
        raise mid_stream_error(provider, error.get("message"), error.get("code") or error.get("type"))
    choices = _choices(chunk, provider)
    usage = chunk.get("usage")
    text = _delta_text(choices)
    return StreamEvent(
        frame=b"data: " + data + b"\n\n",
        usage=usage_from(usage) if isinstance(usage, dict) else None,
        usage_only=not choices and isinstance(usage, dict),
        text=text,
        opening=not text and not isinstance(usage, dict) and _say_nothing_yet(choices),
    )


def _say_nothing_yet(choices: list[Any]) -> bool:
    """Choices with no content, tool call or finish: the role-only chunk a stream opens with."""
    return all(isinstance(choice, dict) and not choice.get("finish_reason") and _role_only(choice.get("delta"))
               for choice in choices)


def _role_only(delta: Any) -> bool:
    if delta is None:  # a legacy completions chunk: its text is all it could say
        return True
    return isinstance(delta, dict) and not any(value for name, value in delta.items() if name != "role")


def _delta_text(choices: list[Any]) -> str:
    parts = []
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            parts.append(delta["content"])
        elif isinstance(choice.get("text"), str):  # a legacy completions chunk
            parts.append(choice["text"])
    return "".join(parts)


def usage_of_completion(content: bytes, provider: str) -> Usage:
    completion = _json_object(content, provider)
    _choices(completion, provider)
    usage = completion.get("usage")
    return usage_from(usage) if isinstance(usage, dict) else Usage()


def usage_of_embeddings(content: bytes, provider: str) -> Usage:
    answer = _json_object(content, provider)
    if not isinstance(answer.get("data"), list):
        raise malformed_response(provider)
    usage = answer.get("usage")
    return usage_from(usage) if isinstance(usage, dict) else Usage()


def usage_from(usage: dict[str, Any]) -> Usage:
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=reported_tokens(usage.get("prompt_tokens")),
        completion_tokens=reported_tokens(usage.get("completion_tokens")),
        cached_tokens=reported_tokens(details.get("cached_tokens") if isinstance(details, dict) else None),
        source="provider",
    )


def error_from_response(
    status: int, content: bytes, headers: httpx.Headers, provider: str,
    *, fields: Callable[[bytes], dict[str, Any]] | None = None,
) -> ProviderError:
    """Map an upstream's non-200 answer to what the client should see and whether to try again.

    ``fields`` reads the provider's error body as OpenAI's error fields (message, type, code,
    param); translating adapters pass their own reader and share the status mapping.
    """
    if status in _PASSED_THROUGH:
        error = (fields or _openai_error_fields)(content)
        return ProviderError(
            error.get("message") or f"Provider {provider} rejected the request.",
            status=status, type=error.get("type") or "invalid_request_error",
            code=error.get("code"), param=error.get("param"), upstream_status=status, retryable=False,
        )
    if status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return ProviderError(
            f"Provider {provider} is rate limiting the gateway; try again shortly.",
            status=429, type="rate_limit_error", code="upstream_rate_limited",
            upstream_status=status, retry_after_s=retry_after, retryable=True,
            headers={"Retry-After": headers["retry-after"]} if retry_after is not None else None,
        )
    if status in (401, 403):
        # The provider refused the gateway's own credentials: an operator problem, not the client's.
        return ProviderError(
            f"Provider {provider} rejected the gateway's credentials.",
            code="upstream_auth_failed", upstream_status=status, retryable=False,
        )
    return ProviderError(
        f"Provider {provider} failed with HTTP {status}.",
        code="upstream_error", upstream_status=status, retryable=status >= 500 or status == 408,
    )


def error_object(content: bytes) -> dict[str, Any]:
    """The ``error`` object of an error body (OpenAI's, Anthropic's and Gemini's each nest one), or {}."""
    try:
        error = orjson.loads(content).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _openai_error_fields(content: bytes) -> dict[str, Any]:
    error = error_object(content)
    return {key: value if isinstance(value, str) or value is None else str(value) for key, value in error.items()}


def _json_object(data: bytes, provider: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise malformed_response(provider) from None
    if not isinstance(parsed, dict):
        raise malformed_response(provider)
    return parsed


def _choices(answer: dict[str, Any], provider: str) -> list[Any]:
    """Every OpenAI completion and chunk has a choices list; one without it is not an answer."""
    choices = answer.get("choices")
    if not isinstance(choices, list):
        raise malformed_response(provider)
    return choices
