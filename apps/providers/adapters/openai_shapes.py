"""OpenAI's response shapes, built from what a translating adapter read from its provider.

Translated answers must be indistinguishable from OpenAI's own: the ``openai`` SDK parses them,
and the gateway bills them from the same ``Usage`` the body reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from apps.providers.contracts import StreamEvent, Usage

DONE_FRAME = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI carries it
    # What the provider needs back with this call in the next turn, in the tool call's
    # ``extra_content`` (as Google's own OpenAI-compatible API puts Gemini's thought signatures):
    # clients that append the assistant message they got send it back unread.
    extra_content: dict[str, Any] | None = None

    def as_openai(self) -> dict[str, Any]:
        call: dict[str, Any] = {"id": self.id, "type": "function",
                                "function": {"name": self.name, "arguments": self.arguments}}
        if self.extra_content:
            call["extra_content"] = self.extra_content
        return call


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def completion_body(
    *, id: str, model: str, text: str | None, tool_calls: list[ToolCall], finish_reason: str, usage: Usage | None
) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None,
                               "refusal": None}
    if tool_calls:
        message["tool_calls"] = [call.as_openai() for call in tool_calls]
    body: dict[str, Any] = {
        "id": id, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage_body(usage)
    return orjson.dumps(body)


@dataclass(slots=True)
class ChunkWriter:
    """The ``chat.completion.chunk`` events of one translated stream (one choice, index 0)."""

    id: str
    model: str
    created: int = field(default_factory=lambda: int(time.time()))

    def delta(self, delta: dict[str, Any], *, text: str = "", opening: bool = False) -> StreamEvent:
        return StreamEvent(frame=self._frame([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]),
                           text=text, opening=opening)

    def role(self) -> StreamEvent:
        return self.delta({"role": "assistant", "content": ""}, opening=True)

    def text(self, text: str) -> StreamEvent:
        return self.delta({"content": text}, text=text)

    def tool_call_start(self, index: int, call: ToolCall) -> StreamEvent:
        """The first delta of a call: its id, name and extra content; the arguments follow."""
        opening = ToolCall(call.id, call.name, "", call.extra_content).as_openai()
        return self.delta({"tool_calls": [{"index": index, **opening}]})

    def tool_arguments(self, index: int, arguments: str) -> StreamEvent:
        return self.delta({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})

    def finish(self, finish_reason: str) -> StreamEvent:
        return StreamEvent(frame=self._frame([{"index": 0, "delta": {}, "logprobs": None,
                                               "finish_reason": finish_reason}]))

    def usage(self, usage: Usage) -> StreamEvent:
        """OpenAI's trailing usage chunk: relayed to clients that asked for it, always billed."""
        return StreamEvent(frame=self._frame([], usage=usage_body(usage)), usage=usage, usage_only=True)

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "choices": choices, **extra}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def done() -> StreamEvent:
    return StreamEvent(frame=DONE_FRAME)
