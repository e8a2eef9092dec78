"""Responses event streams: chat chunks translated into Responses events, and OpenAI's own events tapped.

Every event is ``event: <type>`` and its JSON with a ``sequence_number``. A translated stream opens with
``response.created`` and ``response.in_progress`` (marked ``opening``: routing may still fail over), then
per output item ``response.output_item.added``, its content (``response.content_part.added`` and
``response.output_text.delta``, or ``response.function_call_arguments.delta``), its ``….done`` events and
``response.output_item.done``, and ends with ``response.completed`` (``response.incomplete`` when cut short
by ``max_output_tokens``) carrying the whole response and its usage. The response is stored (if asked)
before that last event goes out, so a client that has it can continue the conversation at once.

A failure once the stream has begun ends it with an ``error`` event and ``response.failed``, numbered on
from the last event sent (``Progress``), whether the stream was translated or OpenAI's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from apps.providers.adapters.openai_shapes import DONE_FRAME
from apps.providers.adapters.wire import malformed_on_failure, sse_data
from apps.providers.contracts import ChatStream, StreamEvent, Usage
from apps.providers.errors import OpenAIError
from apps.proxy.responses.output import (
    finished,
    function_call_item,
    message_item,
    new_id,
    text_part,
    with_extra,
)

Keep = Callable[[dict[str, Any]], Awaitable[None]]
FINAL_TYPES = (b'"response.completed"', b'"response.incomplete"')


def frame(data: dict[str, Any]) -> bytes:
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class Progress:
    """How far a stream got, for the events that end it if it fails after it began."""

    def __init__(self) -> None:
        self.response: dict[str, Any] | None = None  # the response as last announced
        self.sequence = 0  # the next event's number
        self.last_native = b""  # the last frame relayed from OpenAI (its number is read only on failure)

    def restart(self) -> None:
        """A new attempt: what an earlier one announced never reached the client."""
        self.response, self.sequence, self.last_native = None, 0, b""

    def number(self, data: dict[str, Any]) -> bytes:
        data["sequence_number"] = self.sequence
        self.sequence += 1
        return frame(data)

    def failure(self, error: OpenAIError) -> bytes:
        self._catch_up()
        frames = [self.number({"type": "error", "code": error.code or error.type, "message": error.message,
                               "param": error.param})]
        if self.response is not None:
            failed = {**self.response, "status": "failed",
                      "error": {"code": error.code or error.type, "message": error.message}}
            frames.append(self.number({"type": "response.failed", "response": failed}))
        return b"".join(frames)

    def _catch_up(self) -> None:
        """Number on from OpenAI's own events, when they were relayed."""
        if not self.last_native:
            return
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            self.sequence = int(orjson.loads(sse_data(self.last_native)).get("sequence_number", -1)) + 1


def translated_stream(stream: ChatStream, provider: str, writer: EventWriter, keep: Keep) -> ChatStream:
    """A chat chunk stream from ``provider`` as Responses events."""
    return ChatStream(events=_translated(stream, writer, provider, keep), close=stream.close)


async def _translated(stream: ChatStream, writer: EventWriter, provider: str, keep: Keep
                      ) -> AsyncIterator[list[StreamEvent]]:
    kept = False
    with malformed_on_failure(provider):  # a chunk of a shape the writer cannot read is the provider's fault
        async for batch in stream.events:
            events = [translated for event in batch for translated in writer.feed(event)]
            if writer.final is not None and not kept:
                kept = True
                await keep(writer.final)
            if events:
                yield events


def tapped_stream(stream: ChatStream, progress: Progress, keep: Keep) -> ChatStream:
    """OpenAI's own Responses events, relayed unchanged; the final response is kept from the last one."""
    return ChatStream(events=_tapped(stream, progress, keep), close=stream.close)


async def _tapped(stream: ChatStream, progress: Progress, keep: Keep) -> AsyncIterator[list[StreamEvent]]:
    async for batch in stream.events:
        for event in batch:
            if not event.frame:
                continue
            if progress.response is None or event.usage is not None or any(t in event.frame for t in FINAL_TYPES):
                data = orjson.loads(sse_data(event.frame))
                response = data.get("response") if isinstance(data, dict) else None
                if isinstance(response, dict):
                    progress.response = response
                    if data.get("type") in ("response.completed", "response.incomplete"):
                        await keep(response)
            progress.last_native = event.frame
        yield batch


class EventWriter:
    """Builds one response's events from chat chunks (one choice: Responses has no ``n``)."""

    def __init__(self, response: dict[str, Any], progress: Progress, estimate: Callable[[str], Usage]) -> None:
        self.response = response
        self.progress = progress
        self.estimate = estimate  # usage from the text, for a provider that reported none
        self.output: list[dict[str, Any]] = []
        self.message: int | None = None  # output index of the message item being written
        self.text: list[str] = []
        self.calls: dict[int, int] = {}  # chat tool call index → output index
        self.arguments: dict[int, list[str]] = {}  # output index → argument deltas
        self.finish_reason: Any = None
        self.usage = Usage()
        self.started = False
        self.final: dict[str, Any] | None = None  # the finished response, once the stream is done

    def feed(self, event: StreamEvent) -> list[StreamEvent]:
        if event.usage is not None:
            self.usage = event.usage
        if event.frame == DONE_FRAME:
            return [StreamEvent(frame=self._end(), usage=event.usage)]
        chunk = orjson.loads(event.frame[6:])
        frames = [] if self.started else self._start(chunk)
        for choice in (chunk.get("choices") or [])[:1]:
            frames.extend(self._choice(choice))
        if not frames:
            return [StreamEvent(frame=b"", usage=event.usage)] if event.usage else []
        return [StreamEvent(frame=b"".join(frames), usage=event.usage, text=event.text, opening=event.opening)]

    def _emit(self, kind: str, **fields: Any) -> bytes:
        return self.progress.number({"type": kind, **fields})

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self.started = True
        if chunk.get("model"):
            self.response["model"] = chunk["model"]
        self.progress.response = self.response
        return [self._emit("response.created", response=self.response),
                self._emit("response.in_progress", response=self.response)]

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        delta = choice.get("delta") or {}
        frames: list[bytes] = []
        if isinstance(delta.get("content"), str) and delta["content"]:
            frames.extend(self._text(delta["content"]))
        for call in delta.get("tool_calls") or []:
            frames.extend(self._tool_call(call))
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        return frames

    def _text(self, text: str) -> list[bytes]:
        frames: list[bytes] = []
        if self.message is None:
            self.message = len(self.output)
            item = message_item(new_id("msg"), "", status="in_progress")
            item["content"] = []
            self.output.append(item)
            frames.append(self._emit("response.output_item.added", output_index=self.message, item=item))
            frames.append(self._emit("response.content_part.added", item_id=item["id"], output_index=self.message,
                                     content_index=0, part=text_part("")))
        self.text.append(text)
        frames.append(self._emit("response.output_text.delta", item_id=self.output[self.message]["id"],
                                 output_index=self.message, content_index=0, delta=text, logprobs=[]))
        return frames

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        frames: list[bytes] = []
        function = call.get("function") or {}
        index = int(call.get("index", 0))
        if index not in self.calls:
            frames.extend(self._close_message())
            self.calls[index] = position = len(self.output)
            item = with_extra(call, function_call_item(new_id("fc"), str(call.get("id") or new_id("call")),
                                                       str(function.get("name") or ""), "", status="in_progress"))
            self.output.append(item)
            self.arguments[position] = []
            frames.append(self._emit("response.output_item.added", output_index=position, item=item))
        position = self.calls[index]
        if function.get("arguments"):
            self.arguments[position].append(function["arguments"])
            frames.append(self._emit("response.function_call_arguments.delta", item_id=self.output[position]["id"],
                                     output_index=position, delta=function["arguments"]))
        return frames

    def _close_message(self) -> list[bytes]:
        if self.message is None:
            return []
        position, self.message = self.message, None
        item, text = self.output[position], "".join(self.text)
        item.update(message_item(item["id"], text))
        return [
            self._emit("response.output_text.done", item_id=item["id"], output_index=position, content_index=0,
                       text=text, logprobs=[]),
            self._emit("response.content_part.done", item_id=item["id"], output_index=position, content_index=0,
                       part=text_part(text)),
            self._emit("response.output_item.done", output_index=position, item=item),
        ]

    def _end(self) -> bytes:
        frames = [] if self.started else self._start({})
        frames.extend(self._close_message())
        for position in self.calls.values():
            item = self.output[position]
            item.update(arguments="".join(self.arguments[position]), status="completed")
            frames.append(self._emit("response.function_call_arguments.done", item_id=item["id"],
                                     output_index=position, name=item["name"], arguments=item["arguments"]))
            frames.append(self._emit("response.output_item.done", output_index=position, item=item))
        usage = self.usage if self.usage.source != "none" else self.estimate("".join(self.text))
        self.final = finished(self.response, self.output, self.finish_reason, usage)
        self.progress.response = self.final
        kind = "response.incomplete" if self.final["status"] == "incomplete" else "response.completed"
        frames.append(self._emit(kind, response=self.final))
        return b"".join(frames)
