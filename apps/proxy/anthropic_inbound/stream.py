"""The gateway's OpenAI chunk stream → Anthropic's event stream.

message_start opens it; each run of text becomes a text block, each tool call a tool_use block
whose arguments arrive as ``input_json_delta``; at ``[DONE]`` the open block closes and
message_delta carries the stop reason and the final usage, then message_stop. The events keep the
usage, text and ``opening`` mark of the chunks they came from, so the relay bills and estimates as
for chat and routing fails over until content arrives. A provider failure once the stream has begun
reaches the client as one Anthropic ``error`` event (``error_event``, which the relay sends in place
of OpenAI's), whether the stream was translated or an Anthropic upstream's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from apps.providers.adapters.openai_shapes import DONE_FRAME
from apps.providers.adapters.wire import malformed_on_failure
from apps.providers.contracts import ChatStream, StreamEvent, Usage
from apps.providers.errors import OpenAIError
from apps.proxy.anthropic_inbound.response import error_body, message_id, stop_reason, usage_body


def anthropic_stream(stream: ChatStream, provider: str) -> ChatStream:
    """An OpenAI chunk stream from ``provider`` as Anthropic's events."""
    return ChatStream(events=_translated(stream, EventWriter(), provider), close=stream.close)


def error_event(error: OpenAIError) -> bytes:
    """A failure after the stream began, as Anthropic reports one."""
    return frame("error", error_body(error))


async def _translated(stream: ChatStream, writer: EventWriter, provider: str) -> AsyncIterator[list[StreamEvent]]:
    with malformed_on_failure(provider):  # a chunk of a shape the writer cannot read is the provider's fault
        async for batch in stream.events:
            events = [translated for event in batch for translated in writer.feed(event)]
            if events:
                yield events


def frame(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class EventWriter:
    def __init__(self) -> None:
        self.started = False
        self.block: int | None = None  # the open content block's index
        self.block_type = ""
        self.blocks = 0
        self.tools: dict[int, int] = {}  # OpenAI tool call index → block index
        self.finish_reason: Any = None
        self.usage = Usage()

    def feed(self, event: StreamEvent) -> list[StreamEvent]:
        if event.usage is not None:
            self.usage = event.usage
        if event.frame == DONE_FRAME:
            return [StreamEvent(frame=self._end(), usage=event.usage)]
        chunk = orjson.loads(event.frame[6:])
        frames = [] if self.started else [self._start(chunk)]
        for choice in chunk.get("choices") or []:
            frames.extend(self._choice(choice))
        if not frames:
            return [StreamEvent(frame=b"", usage=event.usage)] if event.usage else []
        return [StreamEvent(frame=b"".join(frames), usage=event.usage, text=event.text, opening=event.opening)]

    def _start(self, chunk: dict[str, Any]) -> bytes:
        self.started = True
        message = {"id": message_id(chunk.get("id")), "type": "message", "role": "assistant",
                   "model": chunk.get("model", ""), "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": usage_body(Usage())}
        return frame("message_start", {"type": "message_start", "message": message})

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        delta = choice.get("delta") or {}
        frames: list[bytes] = []
        if delta.get("content"):
            frames.extend(self._open("text", {"type": "text", "text": ""}))
            frames.append(self._delta({"type": "text_delta", "text": delta["content"]}))
        for call in delta.get("tool_calls") or []:
            frames.extend(self._tool_call(call))
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        return frames

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        frames: list[bytes] = []
        function = call.get("function") or {}
        index = int(call.get("index", 0))
        if index not in self.tools:
            block = {"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""), "input": {}}
            frames.extend(self._open("tool_use", block, force=True))
            self.tools[index] = self.blocks - 1
        if function.get("arguments"):
            frames.append(self._delta({"type": "input_json_delta", "partial_json": function["arguments"]},
                                      index=self.tools[index]))
        return frames

    def _open(self, kind: str, block: dict[str, Any], *, force: bool = False) -> list[bytes]:
        if self.block is not None and self.block_type == kind and not force:
            return []
        frames = self._close()
        self.block, self.block_type = self.blocks, kind
        self.blocks += 1
        frames.append(frame("content_block_start", {"type": "content_block_start", "index": self.block,
                                                    "content_block": block}))
        return frames

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        return frame("content_block_delta", {"type": "content_block_delta",
                                             "index": self.block if index is None else index, "delta": delta})

    def _close(self) -> list[bytes]:
        if self.block is None:
            return []
        closed, self.block = self.block, None
        return [frame("content_block_stop", {"type": "content_block_stop", "index": closed})]

    def _end(self) -> bytes:
        frames = [] if self.started else [self._start({})]
        frames.extend(self._close())
        frames.append(frame("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": stop_reason(self.finish_reason), "stop_sequence": None},
            "usage": usage_body(self.usage),
        }))
        frames.append(frame("message_stop", {"type": "message_stop"}))
        return b"".join(frames)
