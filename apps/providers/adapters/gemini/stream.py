"""Gemini's ``streamGenerateContent?alt=sse`` → OpenAI ``chat.completion.chunk`` events.

Each event is a whole ``GenerateContentResponse`` holding the next parts; ``usageMetadata`` is
cumulative, so the last one seen is the usage. Gemini sends no terminator: the stream is complete
when a candidate carried a ``finishReason`` and the body ended.
"""

from __future__ import annotations

from apps.providers.adapters.gemini.response import finish_reason, first_candidate, parse_answer, parts_of, usage_from
from apps.providers.adapters.openai_shapes import ChunkWriter, done
from apps.providers.adapters.wire import sse_data, stream_incomplete
from apps.providers.contracts import StreamEvent, Usage


class GeminiStream:
    def __init__(self, provider: str, upstream_model: str) -> None:
        self.provider = provider
        self.chunks = ChunkWriter(id="", model=upstream_model)
        self.done = False  # only the end of the body says so
        self.started = False
        self.calls = 0
        self.reason: str | None = None
        self.usage: Usage | None = None

    def feed(self, frame: bytes) -> list[StreamEvent]:
        data = sse_data(frame)
        if not data:
            return []
        answer = parse_answer(data, self.provider)
        events = [] if self.started else self._start(answer)
        if isinstance(answer.get("usageMetadata"), dict):
            self.usage = usage_from(answer["usageMetadata"])
        candidate = first_candidate(answer)
        texts, calls = parts_of(candidate, first_call=self.calls)
        events.extend(self.chunks.text(text) for text in texts if text)
        for call in calls:
            events.append(self.chunks.tool_call_start(self.calls, call))
            events.append(self.chunks.tool_arguments(self.calls, call.arguments))
            self.calls += 1
        if candidate.get("finishReason"):
            self.reason = finish_reason(candidate["finishReason"], has_calls=self.calls > 0)
        elif not answer.get("candidates") and answer.get("promptFeedback"):
            self.reason = "content_filter"
        return events

    def finish(self) -> list[StreamEvent]:
        if self.reason is None:
            raise stream_incomplete(self.provider)
        events = [self.chunks.finish(self.reason)]
        if self.usage is not None:
            events.append(self.chunks.usage(self.usage))
        return [*events, done()]

    def _start(self, answer: dict[str, object]) -> list[StreamEvent]:
        self.started = True
        self.chunks.id = str(answer.get("responseId") or "")
        self.chunks.model = str(answer.get("modelVersion") or self.chunks.model)
        return [self.chunks.role()]
