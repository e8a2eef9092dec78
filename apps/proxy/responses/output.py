"""The Responses ``response`` object: built from a chat completion (translated kinds), and its shared parts.

A chat choice becomes output items: its text one ``message`` item (a refusal its ``refusal`` part), each
tool call one ``function_call`` item. A completion cut short by ``max_tokens`` (or a content filter) is an
``incomplete`` response, as OpenAI reports one.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson

from apps.providers.contracts import Usage

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
ECHOED = ("instructions", "max_output_tokens", "metadata", "previous_response_id", "temperature", "top_p", "user",
          "safety_identifier", "prompt_cache_key", "service_tier", "max_tool_calls", "top_logprobs")


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: ``resp_``, ``msg_`` or ``fc_`` and 48 hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


def skeleton(body: Mapping[str, Any], *, response_id: str, model: str, store: bool) -> dict[str, Any]:
    """The response before its output: what the request asked for, echoed as OpenAI echoes it."""
    response: dict[str, Any] = {
        "id": response_id, "object": "response", "created_at": int(time.time()), "status": "in_progress",
        "background": False, "error": None, "incomplete_details": None, "model": model, "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "reasoning": {"effort": None, "summary": None}, "store": store,
        "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [], "truncation": body.get("truncation") or "disabled", "usage": None,
    }
    response.update({name: body.get(name) for name in ECHOED})
    response["metadata"] = body.get("metadata") or {}
    return response


def message_item(item_id: str, text: str, *, status: str = "completed", refusal: str = "") -> dict[str, Any]:
    content = [text_part(text)] if text or not refusal else []
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, *, status: str = "completed"
                       ) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "arguments": arguments, "call_id": call_id,
            "name": name}


def with_extra(call: Mapping[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A function call item keeps the chat call's ``extra_content`` (Gemini's thought signature), which the
    provider needs back with the call when the conversation continues (``translate.py`` returns it)."""
    if isinstance(call.get("extra_content"), dict):
        item["extra_content"] = call["extra_content"]
    return item


def usage_body(usage: Usage) -> dict[str, Any]:
    details = {"cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_creation_tokens}
    return {"input_tokens": usage.prompt_tokens, "input_tokens_details": details,
            "output_tokens": usage.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.total_tokens}


def finished(response: dict[str, Any], output: list[dict[str, Any]], finish_reason: Any, usage: Usage
             ) -> dict[str, Any]:
    """The response with its output, status and usage, once the answer is complete."""
    reason = INCOMPLETE_REASONS.get(str(finish_reason))
    return {**response, "output": output, "status": "incomplete" if reason else "completed",
            "incomplete_details": {"reason": reason} if reason else None, "usage": usage_body(usage)}


def from_completion(response: dict[str, Any], completion: bytes, usage: Usage) -> dict[str, Any]:
    """A translated upstream's chat completion as the finished response."""
    answer = orjson.loads(completion)
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    if message.get("content") or message.get("refusal"):
        output.append(message_item(new_id("msg"), str(message.get("content") or ""),
                                   refusal=str(message.get("refusal") or "")))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(with_extra(call, function_call_item(
            new_id("fc"), str(call.get("id") or new_id("call")), str(function.get("name") or ""),
            str(function.get("arguments") or ""))))
    model = answer.get("model") or response["model"]
    return finished({**response, "model": model}, output, choice.get("finish_reason"), usage)


def output_text(response: Mapping[str, Any]) -> str:
    """The text of a response's message items (what estimates count when a provider reports no usage)."""
    return "".join(part.get("text", "") for item in response.get("output") or [] if isinstance(item, dict)
                   and item.get("type") == "message" for part in item.get("content") or []
                   if isinstance(part, dict) and part.get("type") == "output_text")
