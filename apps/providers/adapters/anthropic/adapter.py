"""The Anthropic adapter: where requests go, how the gateway authenticates, and the error mapping."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from apps.providers.adapters.anthropic.native import NativeStream, native_body, native_response
from apps.providers.adapters.anthropic.request import messages_body
from apps.providers.adapters.anthropic.response import chat_response
from apps.providers.adapters.anthropic.stream import AnthropicStream
from apps.providers.adapters.openai import error_from_response, error_object
from apps.providers.adapters.translated import TranslatingAdapter
from apps.providers.adapters.wire import malformed_on_failure
from apps.providers.contracts import ChatRequest, ChatResponse, ChatStream
from apps.providers.errors import ProviderError

API_VERSION = "2023-06-01"
OVERLOADED = 529  # Anthropic's own status for a temporarily overloaded API
# Anthropic's error types as the OpenAI error type a client would have got for the same fault.
ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "not_found_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "rate_limit_error": "rate_limit_error",
}


class AnthropicAdapter(TranslatingAdapter):
    """``POST {base_url}/messages``; base_url like ``https://api.anthropic.com/v1``, or as Anthropic's SDK
    takes it, ``https://api.anthropic.com`` (the adapter adds ``/v1``, as the SDK does)."""

    kind = "anthropic"

    @cached_property
    def api_root(self) -> str:
        """The path under base_url where the API's ``/messages`` lives.

        Operators paste a base URL from either convention: ours and OpenAI's (ending in ``/v1``) or
        Anthropic's SDK's (the host, or a proxy's prefix, to which the SDK appends ``/v1/…``). Both
        work, for rows stored before and config files alike, with nothing rewritten.
        """
        path = urlsplit(self.upstream.base_url).path.rstrip("/")
        return "" if path.endswith("/v1") else "/v1"

    def chat_path(self, upstream_model: str, *, stream: bool) -> str:
        return f"{self.api_root}/messages"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION, **self.upstream.headers}
        if self.upstream.api_key:
            headers["x-api-key"] = self.upstream.api_key
        return headers

    def encode(self, request: ChatRequest, upstream_model: str) -> bytes:
        if (request.body.get("n") or 1) != 1:
            raise self.unsupported("more than one choice (n > 1)")
        return orjson.dumps(messages_body(request.body, upstream_model, stream=request.stream))

    def decode(self, content: bytes, upstream_model: str) -> ChatResponse:
        return chat_response(content, self.upstream.provider_name)

    def translator(self, upstream_model: str) -> AnthropicStream:
        return AnthropicStream(self.upstream.provider_name, upstream_model)

    async def message(self, body: Mapping[str, Any], *, upstream_model: str, beta: str = "") -> ChatResponse:
        """An Anthropic Messages request relayed as it is (``/v1/messages``); the answer is Anthropic's.

        ``beta`` is the client's ``anthropic-beta`` header, passed on so beta features keep working.
        """
        content = await self.post(f"{self.api_root}/messages", native_body(body, upstream_model), _beta_headers(beta))
        with malformed_on_failure(self.upstream.provider_name):
            return native_response(content, self.upstream.provider_name)

    async def count_tokens(self, body: Mapping[str, Any], *, upstream_model: str, beta: str = "") -> bytes:
        """``POST /v1/messages/count_tokens`` relayed as it is; the answer (``{"input_tokens": N}``) too.

        Counting is free at Anthropic and generates nothing, so there is no usage to read; an answer
        without a whole ``input_tokens`` is malformed, and another attempt may do better.
        """
        path = f"{self.api_root}/messages/count_tokens"
        content = await self.post(path, native_body(body, upstream_model), _beta_headers(beta))
        with malformed_on_failure(self.upstream.provider_name):
            counted = orjson.loads(content)["input_tokens"]
            if isinstance(counted, bool) or not isinstance(counted, int) or counted < 0:
                raise ValueError(counted)
        return content

    async def open_message_stream(self, body: Mapping[str, Any], *, upstream_model: str, beta: str = "") -> ChatStream:
        """The same, streamed: Anthropic's events relayed unchanged."""
        stream = NativeStream(self.upstream.provider_name)
        path = f"{self.api_root}/messages"
        return await self.open(path, native_body(body, upstream_model), stream, _beta_headers(beta))

    def error(self, status: int, content: bytes, headers: httpx.Headers) -> ProviderError:
        name = self.upstream.provider_name
        if status == OVERLOADED:
            return ProviderError(
                f"Provider {name} is overloaded; try again shortly.", status=503, type="service_unavailable",
                code="upstream_overloaded", upstream_status=status, retryable=True,
            )
        return error_from_response(status, content, headers, name, fields=error_fields)


def _beta_headers(beta: str) -> dict[str, str]:
    return {"anthropic-beta": beta} if beta else {}


def error_fields(content: bytes) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}`` as OpenAI's error fields."""
    if not (error := error_object(content)):
        return {}
    kind = str(error.get("type") or "")
    return {"message": str(error.get("message") or "") or None,
            "type": ERROR_TYPES.get(kind, "invalid_request_error"), "code": kind or None, "param": None}
