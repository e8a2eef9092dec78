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

from apps.providers.adapters.anthropic.response import message_of, usage_from
from apps.providers.adapters.wire import malformed_response, mid_stream_error, sse_data, stream_incomplete
from apps.providers.contracts import ChatResponse, StreamEvent, Usage


def native_body(body: Mapping[str, Any], upstream_model: str) -> bytes:
    return orjson.dumps({**body, "model": upstream_model})


def native_response(content: bytes, provider: str) -> ChatResponse:
    usage = message_of(content, provider).get("usage")
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
            raise malformed_response(self.provider) from None
        kind = event.get("type") if isinstance(event, dict) else None
        relayed = frame + b"\n\n"
        if kind == "error":
            error = event.get("error") or {}
            raise mid_stream_error(self.provider, error.get("message"), error.get("type"))
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
            raise stream_incomplete(self.provider)
        return []


def _says_nothing_yet(kind: object, event: dict[str, Any]) -> bool:
    """message_start, ping and the start of a text or thinking block: the client has no content yet."""
    if kind == "content_block_start":
        return (event.get("content_block") or {}).get("type") != "tool_use"
    return kind in ("message_start", "ping")
