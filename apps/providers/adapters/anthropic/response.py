"""Anthropic message → OpenAI ``chat.completion``, with usage in OpenAI's terms.

Anthropic's ``input_tokens`` excludes the tokens read from and written to the prompt cache;
OpenAI's ``prompt_tokens`` includes everything sent. So prompt = input + cache read + cache
creation; cache reads are the cached tokens (billed at the cached price), cache creations are
kept in ``Usage.cache_creation_tokens`` (billed at the cache-write price).
"""

from __future__ import annotations

from typing import Any

import orjson

from apps.providers.adapters.openai_shapes import ToolCall, completion_body
from apps.providers.adapters.wire import malformed_response, reported_tokens, tokens_together
from apps.providers.contracts import ChatResponse, Usage

FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
    "max_tokens": "length", "tool_use": "tool_calls", "refusal": "content_filter",
}


def chat_response(content: bytes, provider: str) -> ChatResponse:
    message = message_of(content, provider)
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append(ToolCall(str(block.get("id", "")), str(block.get("name", "")),
                                  orjson.dumps(block.get("input") or {}).decode()))
    usage = usage_from(message["usage"]) if isinstance(message.get("usage"), dict) else None
    body = completion_body(
        id=str(message.get("id", "")), model=str(message.get("model", "")), text="".join(texts), tool_calls=calls,
        finish_reason=finish_reason(message.get("stop_reason")), usage=usage,
    )
    return ChatResponse(content=body, usage=usage or Usage())


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(str(stop_reason), "stop")


def usage_from(usage: dict[str, Any]) -> Usage:
    cache_read = reported_tokens(usage.get("cache_read_input_tokens"))
    cache_creation = reported_tokens(usage.get("cache_creation_input_tokens"))
    return Usage(
        prompt_tokens=tokens_together(reported_tokens(usage.get("input_tokens")), cache_read, cache_creation),
        completion_tokens=reported_tokens(usage.get("output_tokens")),
        cached_tokens=cache_read,
        source="provider",
        cache_creation_tokens=cache_creation,
    )


def message_of(content: bytes, provider: str) -> dict[str, Any]:
    """An Anthropic message, or the malformed-response error when the body is not one."""
    try:
        message = orjson.loads(content)
    except orjson.JSONDecodeError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise malformed_response(provider)
    return message
