"""Anthropic in, Anthropic out: the Messages API relayed as it is, for ``/v1/messages``.

When a ``/v1/messages`` request is served by an Anthropic deployment there is nothing to translate,
and translating would lose what OpenAI's format cannot carry (``cache_control`` breakpoints,
``thinking``, ``top_k``, citations). The body goes up with only ``model`` replaced; the answer and
the stream come back byte for byte, read only for usage (and text, for estimates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apps.providers.adapters.anthropic.response import usage_from
from apps.providers.adapters.wire import sse_data
from apps.providers.contracts import ChatResponse, StreamEvent, Usage
from apps.providers.errors import ProviderError


def native_body(body: Mapping[str, Any], upstream_model: str) -> bytes:
    return orjson.dumps({**body, "model": upstream_model})


def native_response(content: bytes, provider: str) -> ChatResponse:
    try:
        message = orjson.loads(content)
    except orjson.JSONDecodeError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise ProviderError(f"Provider {provider} sent a response the gateway could not read.",
                            code="upstream_malformed_response", retryable=True)
    usage = message.get("usage")
    return ChatResponse(content=content, usage=usage_from(usage) if isinstance(usage, dict) else Usage())


class NativeStream:
    """Relays Anthropic's events unchanged; the message_delta event carries the final usage."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.done = False
        self.usage: dict[str, Any] = {}

    def feed(self, frame: bytes) -> list[StreamEvent]:
        data = sse_data(frame)
        if not data:
            return []
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProviderError(f"Provider {self.provider} sent a response the gateway could not read.",
                                code="upstream_malformed_response", retryable=True) from None
        kind = event.get("type") if isinstance(event, dict) else None
        relayed = frame + b"\n\n"
        if kind == "error":
            error = event.get("error") or {}
            raise ProviderError(f"Provider {self.provider} reported an error mid-stream: {error.get('message')}.",
                                code=str(error.get("type") or "upstream_error"), retryable=False)
        if kind == "message_start":
            self.usage.update((event.get("message") or {}).get("usage") or {})
        elif kind == "message_delta":
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            return [StreamEvent(frame=relayed, usage=usage_from(self.usage))]
        elif kind == "content_block_delta" and (event.get("delta") or {}).get("type") == "text_delta":
            return [StreamEvent(frame=relayed, text=str(event["delta"].get("text", "")))]
        self.done = self.done or kind == "message_stop"
        return [StreamEvent(frame=relayed, opening=_says_nothing_yet(kind, event))]

    def finish(self) -> list[StreamEvent]:
        if not self.done:
            raise ProviderError(f"Provider {self.provider} ended the stream before it was complete.",
                                code="upstream_stream_incomplete", retryable=True)
        return []


def _says_nothing_yet(kind: object, event: dict[str, Any]) -> bool:
    """message_start, ping and the start of a text or thinking block: the client has no content yet."""
    if kind == "content_block_start":
        return (event.get("content_block") or {}).get("type") != "tool_use"
    return kind in ("message_start", "ping")
