"""Anthropic's Messages API wire format: messages, their event stream, and errors.

As in the real API, `input_tokens` excludes the tokens read from the cache, which
are reported apart as `cache_read_input_tokens`; and `message_start` reports a
provisional `output_tokens` of 1 that `message_delta` later replaces with the total.
"""

from __future__ import annotations

import orjson

from .content import Answer, compose_answer, last_user_text, new_id, prompt_tokens_of_messages, text_pieces
from .directives import JsonOutput, OfferedTool, ToolChoice, choose_tool
from .replies import JsonReply, Payload, ProviderError, SseEvent, SseReply
from .rules import Knobs

# status -> (error.type, default message), as Anthropic sends them.
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def error_reply(status: int, message: str | None = None, *, param: str | None = None,
                retry_after: int | None = None) -> JsonReply:
    fallback = ("invalid_request_error" if status < 500 else "api_error",
                f"Fake upstream failure (HTTP {status}).")
    error_type, default_message = _ERRORS.get(status, fallback)
    if message and param:
        message = f"{param}: {message}"
    payload = {"type": "error", "error": {"type": error_type,
                                          "message": message or default_message}}
    headers = (("retry-after", str(retry_after)),) if retry_after is not None else ()
    return JsonReply(payload, status=status, headers=headers)


def message(body: Payload, knobs: Knobs) -> JsonReply | SseReply:
    model, messages = _model_and_messages(body)
    if not isinstance(body.get("max_tokens"), int):
        raise ProviderError(400, "Field required", param="max_tokens")
    answer = compose_answer(
        prompt_text=last_user_text(messages),
        prompt_tokens=prompt_tokens_of_messages(messages, system=body.get("system")),
        knobs=knobs,
        max_tokens=body["max_tokens"],
        tool_use=choose_tool(_offered_tools(body), _tool_choice(body), knobs),
        json_output=_json_output(body),
    )
    if body.get("stream"):
        return _message_stream(model, answer, knobs)
    payload = {**_message_envelope(model), "content": _content_blocks(answer),
               "stop_reason": _stop_reason(answer), "usage": _usage(answer)}
    if knobs.no_usage:
        del payload["usage"]
    return JsonReply(payload, essential_field="content")


def count_tokens(body: Payload, knobs: Knobs) -> JsonReply:
    """``POST /v1/messages/count_tokens``: the prompt's tokens as a message would count them."""
    _, messages = _model_and_messages(body)
    return JsonReply({"input_tokens": prompt_tokens_of_messages(messages, system=body.get("system"))},
                     essential_field="input_tokens")


def _model_and_messages(body: Payload) -> tuple[str, list[object]]:
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise ProviderError(400, "Field required", param="model")
    if not isinstance(messages, list) or not messages:
        raise ProviderError(400, "Field required", param="messages")
    return model, messages


def _offered_tools(body: Payload) -> list[OfferedTool]:
    """Client tools (``{"name", "input_schema"}``); server tools (web search…) have a ``type`` and no schema."""
    tools = body.get("tools")
    tools = tools if isinstance(tools, list) else []
    return [OfferedTool(tool["name"], tool.get("input_schema")) for tool in tools
            if isinstance(tool, dict) and isinstance(tool.get("name"), str) and "input_schema" in tool]


def _tool_choice(body: Payload) -> ToolChoice:
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool" and isinstance(choice, dict):
        return ToolChoice("required", (str(choice.get("name")),))
    return ToolChoice("required") if kind == "any" else ToolChoice("none") if kind == "none" else ToolChoice()


def _json_output(body: Payload) -> JsonOutput | None:
    """Structured outputs: ``output_config.format``, or the beta's ``output_format``, a json_schema."""
    config = body.get("output_config")
    requested = config.get("format") if isinstance(config, dict) else body.get("output_format")
    if not isinstance(requested, dict) or requested.get("type") != "json_schema":
        return None
    schema = requested.get("schema")
    return JsonOutput(schema if isinstance(schema, dict) else None)


def _message_envelope(model: str) -> Payload:
    return {"id": new_id("msg_"), "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None}


def _stop_reason(answer: Answer) -> str:
    if answer.tool_use:
        return "tool_use"
    return "max_tokens" if answer.truncated else "end_turn"


def _content_blocks(answer: Answer) -> list[Payload]:
    if answer.tool_use:
        return [{"type": "tool_use", "id": new_id("toolu_"), "name": answer.tool_use.name,
                 "input": answer.tool_use.arguments}]
    return [{"type": "text", "text": answer.text}]


def _usage(answer: Answer, output_tokens: int | None = None) -> Payload:
    return {
        "input_tokens": answer.prompt_tokens - answer.cached_tokens - answer.cache_write_tokens,
        "cache_creation_input_tokens": answer.cache_write_tokens,
        "cache_read_input_tokens": answer.cached_tokens,
        "output_tokens": answer.completion_tokens if output_tokens is None else output_tokens,
    }


def _message_stream(model: str, answer: Answer, knobs: Knobs) -> SseReply:
    start = {**_message_envelope(model), "usage": _usage(answer, output_tokens=1)}
    final_delta: Payload = {"type": "message_delta",
                            "delta": {"stop_reason": _stop_reason(answer), "stop_sequence": None},
                            "usage": _usage(answer)}
    if knobs.no_usage:
        del start["usage"], final_delta["usage"]
    opening, deltas = _block_events(answer, knobs)
    return SseReply(
        head=[
            SseEvent({"type": "message_start", "message": start}, "message_start"),
            SseEvent({"type": "content_block_start", "index": 0, "content_block": opening},
                     "content_block_start"),
            SseEvent({"type": "ping"}, "ping"),
        ],
        content=[SseEvent({"type": "content_block_delta", "index": 0, "delta": delta},
                          "content_block_delta") for delta in deltas],
        tail=[
            SseEvent({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            SseEvent(final_delta, "message_delta"),
            SseEvent({"type": "message_stop"}, "message_stop"),
        ],
        essential_field="delta",
    )


def _block_events(answer: Answer, knobs: Knobs) -> tuple[Payload, list[Payload]]:
    """The content block as first announced, and the deltas that fill it in."""
    if answer.tool_use is None:
        texts = answer.deltas(knobs.stream_chunks)
        return {"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in texts]
    opening = {**_content_blocks(answer)[0], "input": {}}
    arguments = orjson.dumps(answer.tool_use.arguments).decode()
    return opening, [{"type": "input_json_delta", "partial_json": piece}
                     for piece in text_pieces(arguments, knobs.stream_chunks)]
