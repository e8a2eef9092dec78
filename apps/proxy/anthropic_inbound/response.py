"""The gateway's OpenAI-shaped answer → an Anthropic message, and errors in Anthropic's shape.

Usage goes back in Anthropic's terms: ``input_tokens`` excludes the tokens read from or written
to the prompt cache, which are reported apart.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse

from apps.providers.adapters.openai_messages import json_arguments
from apps.providers.contracts import Usage
from apps.providers.errors import OpenAIError

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               503: "overloaded_error", 529: "overloaded_error"}


def message_body(completion: bytes, usage: Usage) -> bytes:
    answer = orjson.loads(completion)
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
                        "input": json_arguments(function.get("arguments"))})
    return orjson.dumps({
        "id": message_id(answer.get("id")), "type": "message", "role": "assistant",
        "model": answer.get("model", ""), "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")), "stop_sequence": None,
        "usage": usage_body(usage),
    })


def message_id(upstream_id: Any) -> str:
    text = str(upstream_id or "")
    return text if text.startswith("msg_") else f"msg_{text}"


def stop_reason(finish_reason: Any) -> str:
    return STOP_REASONS.get(str(finish_reason), "end_turn")


def usage_body(usage: Usage) -> dict[str, int]:
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    return {
        "input_tokens": max(0, usage.prompt_tokens - cached - usage.cache_creation_tokens),
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
    }


def error_body(error: OpenAIError) -> dict[str, Any]:
    kind = ERROR_TYPES.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def anthropic_error_response(error: OpenAIError) -> HttpResponse:
    response = HttpResponse(orjson.dumps(error_body(error)), status=error.status, content_type="application/json")
    for name, value in error.headers.items():
        response[name] = value
    return response


def text_of_message(message: bytes) -> str:
    """The text blocks of an Anthropic message, for usage estimates."""
    blocks = orjson.loads(message).get("content") or []
    return "".join(block.get("text", "") for block in blocks if isinstance(block, dict) and block.get("type") == "text")
