"""A relayed stream, assembled into the ``chat.completion`` it amounts to, so it can be cached.

Content, refusals, tool calls (their arguments arrive in pieces), logprobs, finish reasons and
usage are gathered per choice from OpenAI ``chat.completion.chunk`` events. A stream whose every
choice did not finish is incomplete and assembles into nothing.
"""

from __future__ import annotations

from typing import Any

import orjson

DATA_PREFIX = b"data: "


class _Choice:
    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.logprobs: list[Any] | None = None
        self.finish_reason: str | None = None

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") or {}
        self.role = delta.get("role") or self.role
        if isinstance(delta.get("content"), str):
            self.content.append(delta["content"])
        if isinstance(delta.get("refusal"), str):
            self.refusal.append(delta["refusal"])
        for call in delta.get("tool_calls") or ():
            self._add_tool_call(call)
        if isinstance(logprobs := choice.get("logprobs"), dict):
            self.logprobs = (self.logprobs or []) + list(logprobs.get("content") or ())
        self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def _add_tool_call(self, call: dict[str, Any]) -> None:
        slot = self.tool_calls.setdefault(
            int(call.get("index", 0)), {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
        )
        slot["id"] = call.get("id") or slot["id"]
        slot["type"] = call.get("type") or slot["type"]
        function = call.get("function") or {}
        slot["function"]["name"] += function.get("name") or ""
        slot["function"]["arguments"] += function.get("arguments") or ""

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": "".join(self.content) if self.content else None}
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[index] for index in sorted(self.tool_calls)]
        return message


class StreamAssembler:
    def __init__(self) -> None:
        self._envelope: dict[str, Any] = {}
        self._choices: dict[int, _Choice] = {}
        self._usage: dict[str, Any] | None = None
        self._unreadable = False

    def feed(self, frame: bytes) -> None:
        """One relayed SSE frame (``data: {...}\\n\\n``; ``[DONE]`` and comments are ignored).

        Never raises: a chunk this cannot read (the relay passes on whatever the provider sent)
        only means the stream is not cached.
        """
        if self._unreadable or not frame.startswith(DATA_PREFIX) or frame.startswith(b"data: [DONE]"):
            return
        try:
            self._add(orjson.loads(frame[len(DATA_PREFIX):]))
        except (ValueError, TypeError, AttributeError):
            self._unreadable = True

    def _add(self, chunk: dict[str, Any]) -> None:
        if not self._envelope:
            self._envelope = {name: chunk[name] for name in ("id", "created", "model", "system_fingerprint")
                              if name in chunk}
        for choice in chunk.get("choices") or ():
            self._choices.setdefault(int(choice.get("index", 0)), _Choice()).add(choice)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]

    def completion(self) -> bytes | None:
        unfinished = any(choice.finish_reason is None for choice in self._choices.values())
        if self._unreadable or not self._choices or unfinished:
            return None
        completion: dict[str, Any] = {
            "id": self._envelope.get("id", ""),
            "object": "chat.completion",
            "created": self._envelope.get("created", 0),
            "model": self._envelope.get("model", ""),
            "choices": [
                {"index": index, "message": choice.message(),
                 "logprobs": {"content": choice.logprobs} if choice.logprobs is not None else None,
                 "finish_reason": choice.finish_reason}
                for index, choice in sorted(self._choices.items())
            ],
        }
        if "system_fingerprint" in self._envelope:
            completion["system_fingerprint"] = self._envelope["system_fingerprint"]
        if self._usage is not None:
            completion["usage"] = self._usage
        return orjson.dumps(completion)
