"""A cached ``chat.completion`` replayed as the OpenAI stream a provider would have sent.

Per choice: a role chunk, the content (and refusal) in one chunk, one chunk per tool call with its
whole arguments, a finish chunk; then the usage chunk if the client asked for it
(``stream_options.include_usage``), then ``[DONE]``. The events are all known at once, so they go
out as one body.
"""

from __future__ import annotations

from typing import Any

import orjson

from apps.providers.adapters.openai_shapes import DONE_FRAME


def replay_stream(content: bytes, *, include_usage: bool) -> bytes:
    completion = orjson.loads(content)
    envelope = {"id": completion.get("id", ""), "object": "chat.completion.chunk",
                "created": completion.get("created", 0), "model": completion.get("model", "")}
    if "system_fingerprint" in completion:
        envelope["system_fingerprint"] = completion["system_fingerprint"]

    def frame(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return b"data: " + orjson.dumps({**envelope, "choices": choices, **extra}) + b"\n\n"

    frames = [frame([chunk]) for choice in completion.get("choices") or () for chunk in _choice_chunks(choice)]
    if include_usage and isinstance(completion.get("usage"), dict):
        frames.append(frame([], usage=completion["usage"]))
    frames.append(DONE_FRAME)
    return b"".join(frames)


def _choice_chunks(choice: dict[str, Any]) -> list[dict[str, Any]]:
    index, message = choice.get("index", 0), choice.get("message") or {}
    opening = "" if isinstance(message.get("content"), str) else None  # as OpenAI opens a text or a tool call
    chunks = [{"index": index, "delta": {"role": message.get("role", "assistant"), "content": opening},
               "finish_reason": None}]
    text = {name: message[name] for name in ("content", "refusal") if isinstance(message.get(name), str)}
    if text:
        chunks.append({"index": index, "delta": text, "logprobs": choice.get("logprobs"), "finish_reason": None})
    for number, call in enumerate(message.get("tool_calls") or ()):
        chunks.append({"index": index, "delta": {"tool_calls": [{"index": number, **call}]}, "finish_reason": None})
    chunks.append({"index": index, "delta": {}, "finish_reason": choice.get("finish_reason") or "stop"})
    return chunks
