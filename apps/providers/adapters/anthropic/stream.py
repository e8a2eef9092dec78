"""Anthropic's event stream → OpenAI ``chat.completion.chunk`` events.

message_start opens the stream (id, model, input usage); content_block_start/delta carry text
and tool calls (tool input arrives as ``input_json_delta`` pieces, relayed as argument deltas);
message_delta brings the stop reason and the output tokens; message_stop ends it, and the gateway
sends the finish chunk, the usage chunk and ``[DONE]``. ping is dropped; error raises.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from apps.providers.adapters.anthropic.response import finish_reason, usage_from
from apps.providers.adapters.openai_shapes import ChunkWriter, ToolCall, done
from apps.providers.adapters.wire import malformed_response, mid_stream_error, sse_data, stream_incomplete
from apps.providers.contracts import StreamEvent


class AnthropicStream:
    def __init__(self, provider: str, upstream_model: str) -> None:
        self.provider = provider
        self.chunks = ChunkWriter(id="", model=upstream_model)
        self.done = False
        self.usage: dict[str, Any] = {}
        self.finish_reason = "stop"
        self.tool_indexes: dict[int, int] = {}  # content block index → OpenAI tool call index

    def feed(self, frame: bytes) -> list[StreamEvent]:
        data = sse_data(frame)
        if not data:
            return []
        event = self._json(data)
        handler = getattr(self, f"_on_{event.get('type')}", None)
        return handler(event) if handler is not None else []  # ping, and event types yet to come

    def finish(self) -> list[StreamEvent]:
        if not self.done:
            raise stream_incomplete(self.provider)
        events = [self.chunks.finish(self.finish_reason)]
        if self.usage:
            events.append(self.chunks.usage(usage_from(self.usage)))
        return [*events, done()]

    def _on_message_start(self, event: dict[str, Any]) -> list[StreamEvent]:
        message = event.get("message") or {}
        self.chunks = dataclasses.replace(self.chunks, id=str(message.get("id", "")),
                                          model=str(message.get("model") or self.chunks.model))
        self.usage.update(message.get("usage") or {})
        return [self.chunks.role()]

    def _on_content_block_start(self, event: dict[str, Any]) -> list[StreamEvent]:
        block = event.get("content_block") or {}
        if block.get("type") != "tool_use":
            return []
        index = self.tool_indexes[int(event.get("index", 0))] = len(self.tool_indexes)
        return [self.chunks.tool_call_start(index, ToolCall(str(block.get("id", "")), str(block.get("name", "")), ""))]

    def _on_content_block_delta(self, event: dict[str, Any]) -> list[StreamEvent]:
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self.chunks.text(str(delta["text"]))]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            index = self.tool_indexes.get(int(event.get("index", 0)), 0)
            return [self.chunks.tool_arguments(index, str(delta["partial_json"]))]
        return []  # thinking and signature deltas have no OpenAI counterpart

    def _on_message_delta(self, event: dict[str, Any]) -> list[StreamEvent]:
        self.finish_reason = finish_reason((event.get("delta") or {}).get("stop_reason"))
        # message_delta's usage is cumulative and wins over message_start's provisional numbers.
        self.usage.update({key: value for key, value in (event.get("usage") or {}).items() if value is not None})
        return []

    def _on_message_stop(self, event: dict[str, Any]) -> list[StreamEvent]:
        self.done = True
        return []

    def _on_error(self, event: dict[str, Any]) -> list[StreamEvent]:
        error = event.get("error") or {}
        raise mid_stream_error(self.provider, error.get("message") or error.get("type"), error.get("type"))

    def _json(self, data: bytes) -> dict[str, Any]:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            raise malformed_response(self.provider)
        return event
