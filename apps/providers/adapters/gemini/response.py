"""Gemini ``GenerateContentResponse`` → OpenAI ``chat.completion``.

``usageMetadata.promptTokenCount`` includes ``cachedContentTokenCount``, as OpenAI's
prompt_tokens includes cached tokens; thinking tokens (``thoughtsTokenCount``) are billed as
output, as Google bills them. Gemini gives tool calls no ids, so the gateway numbers them; a call's
``thoughtSignature`` goes to the client in the tool call's ``extra_content.google.thought_signature``.
"""

from __future__ import annotations

from typing import Any

import orjson

from apps.providers.adapters.openai_shapes import ToolCall, completion_body
from apps.providers.adapters.wire import malformed_response, mid_stream_error, reported_tokens, tokens_together
from apps.providers.contracts import ChatResponse, Usage

FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}


def chat_response(content: bytes, provider: str, upstream_model: str) -> ChatResponse:
    answer = parse_answer(content, provider)
    candidate = first_candidate(answer)
    texts, calls = parts_of(candidate, first_call=0)
    usage = usage_from(answer["usageMetadata"]) if isinstance(answer.get("usageMetadata"), dict) else None
    body = completion_body(
        id=str(answer.get("responseId") or ""), model=str(answer.get("modelVersion") or upstream_model),
        text="".join(texts), tool_calls=calls,
        finish_reason=finish_reason(candidate.get("finishReason"), has_calls=bool(calls)) if candidate else
        "content_filter",  # no candidate at all: the prompt itself was blocked
        usage=usage,
    )
    return ChatResponse(content=body, usage=usage or Usage())


def parse_answer(content: bytes, provider: str) -> dict[str, Any]:
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        # A stream that fails after it started reports the error as one more event.
        error = answer["error"]
        raise mid_stream_error(provider, error.get("message"), error.get("status"))
    if not isinstance(answer, dict) or not (isinstance(answer.get("candidates"), list) or "promptFeedback" in answer):
        raise malformed_response(provider)
    return answer


def first_candidate(answer: dict[str, Any]) -> dict[str, Any]:
    candidates = answer.get("candidates") or []
    return candidates[0] if candidates and isinstance(candidates[0], dict) else {}


def parts_of(candidate: dict[str, Any], *, first_call: int) -> tuple[list[str], list[ToolCall]]:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if not isinstance(part, dict) or part.get("thought"):
            continue  # thought summaries are not part of the answer
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            call_id = str(call.get("id") or f"call_{first_call + len(calls)}")
            arguments = orjson.dumps(call.get("args") or {}).decode()
            calls.append(ToolCall(call_id, str(call.get("name", "")), arguments, signed(part.get("thoughtSignature"))))
    return texts, calls


def signed(signature: Any) -> dict[str, Any] | None:
    """A call's thought signature where Google's OpenAI-compatible API puts it: Gemini 3 refuses a
    conversation whose earlier calls come back without theirs (request.py returns it)."""
    return {"google": {"thought_signature": signature}} if isinstance(signature, str) and signature else None


def finish_reason(reason: Any, *, has_calls: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if has_calls else "stop"


def usage_from(metadata: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=reported_tokens(metadata.get("promptTokenCount")),
        completion_tokens=tokens_together(reported_tokens(metadata.get("candidatesTokenCount")),
                                          reported_tokens(metadata.get("thoughtsTokenCount"))),
        cached_tokens=reported_tokens(metadata.get("cachedContentTokenCount")),
        source="provider",
    )
