"""OpenAI's wire format: chat completions, errors, and what the other endpoints share.

Field names, nesting and the streaming usage rules follow OpenAI's API reference:
with `stream_options.include_usage`, every chunk carries `"usage": null` and one
extra chunk with `"choices": []` carries the usage just before `data: [DONE]`.
"""

from __future__ import annotations

import time

import orjson

from .content import Answer, compose_answer, last_user_text, new_id, prompt_tokens_of_messages, text_pieces
from .directives import JsonOutput, OfferedTool, ToolChoice, ToolUse, choose_tool
from .replies import JsonReply, Payload, ProviderError, SseEvent, SseReply
from .rules import Knobs

FINGERPRINT = "fp_fake_upstream"
DONE = SseEvent("[DONE]")
MAX_CHOICES = 128

# status -> (error.type, error.code, default message), as OpenAI sends them.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None,
          "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_reply(status: int, message: str | None = None, *, param: str | None = None,
                retry_after: int | None = None) -> JsonReply:
    fallback = ("invalid_request_error" if status < 500 else "server_error", None,
                f"Fake upstream failure (HTTP {status}).")
    error_type, code, default_message = _ERRORS.get(status, fallback)
    error = {"message": message or default_message, "type": error_type, "param": param,
             "code": code}
    headers = (("retry-after", str(retry_after)),) if retry_after is not None else ()
    return JsonReply({"error": error}, status=status, headers=headers)


def chat_completion(body: Payload, knobs: Knobs) -> JsonReply | SseReply:
    model = required_text(body, "model")
    answer = _chat_answer(body, knobs)
    choices = choice_count(body)
    if body.get("stream"):
        include_usage = wants_stream_usage(body) and not knobs.no_usage
        return _chat_stream(model, answer, choices, knobs, include_usage=include_usage)
    payload = {
        "id": new_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [_chat_choice(index, answer) for index in range(choices)],
        "usage": _chat_usage(answer, choices, knobs),
        "service_tier": "default", "system_fingerprint": FINGERPRINT,
    }
    if knobs.no_usage:
        del payload["usage"]
    return JsonReply(payload, essential_field="choices")


def _chat_answer(body: Payload, knobs: Knobs) -> Answer:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ProviderError(400, "'messages' must be a non-empty array.", param="messages")
    return compose_answer(
        prompt_text=last_user_text(messages),
        prompt_tokens=prompt_tokens_of_messages(messages),
        knobs=knobs,
        max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
        tool_use=choose_tool(offered_tools(body), tool_choice(body), knobs),
        json_output=json_output(body),
    )


def offered_tools(body: Payload) -> list[OfferedTool]:
    """Chat's function tools: ``{"type": "function", "function": {"name", "parameters"}}``."""
    tools = body.get("tools")
    tools = tools if isinstance(tools, list) else []
    functions = [tool["function"] for tool in tools
                 if isinstance(tool, dict) and isinstance(tool.get("function"), dict)]
    return [OfferedTool(str(f.get("name")), f.get("parameters")) for f in functions if isinstance(f.get("name"), str)]


def tool_choice(body: Payload) -> ToolChoice:
    choice = body.get("tool_choice")
    if choice in ("none", "required"):
        return ToolChoice(choice)
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return ToolChoice("required", (str(choice["function"].get("name")),))
    if isinstance(choice, dict) and isinstance(allowed := choice.get("allowed_tools"), dict):
        tools = allowed.get("tools")
        names = tuple(str(t["function"].get("name")) for t in (tools if isinstance(tools, list) else [])
                      if isinstance(t, dict) and isinstance(t.get("function"), dict))
        return ToolChoice("required" if allowed.get("mode") == "required" else "auto", names)
    return ToolChoice("auto")


def json_output(body: Payload) -> JsonOutput | None:
    """``response_format``: ``json_schema`` (``{"json_schema": {"schema": …}}``) or ``json_object``."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return JsonOutput(None)
    spec = response_format.get("json_schema")
    if response_format.get("type") == "json_schema" and isinstance(spec, dict):
        schema = spec.get("schema")
        return JsonOutput(schema if isinstance(schema, dict) else None)
    return None


def finish_reason(answer: Answer) -> str:
    if answer.tool_use:
        return "tool_calls"
    return "length" if answer.truncated else "stop"


def _chat_choice(index: int, answer: Answer) -> Payload:
    message: Payload = {"role": "assistant", "content": answer.text, "refusal": None,
                        "annotations": []}
    if answer.tool_use:
        message["content"] = None
        message["tool_calls"] = [_tool_call(answer.tool_use, _arguments_text(answer))]
    return {"index": index, "message": message, "logprobs": None,
            "finish_reason": finish_reason(answer)}


def _tool_call(tool_use: ToolUse, arguments: str) -> Payload:
    return {"id": new_id("call_"), "type": "function",
            "function": {"name": tool_use.name, "arguments": arguments}}


def _arguments_text(answer: Answer) -> str:
    return orjson.dumps(answer.tool_use.arguments if answer.tool_use else {}).decode()


def _chat_usage(answer: Answer, choices: int, knobs: Knobs) -> Payload:
    completion_tokens = answer.completion_tokens * choices
    return {**_true_usage(answer, completion_tokens), **(knobs.reported_usage or {})}


def _true_usage(answer: Answer, completion_tokens: int) -> Payload:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": answer.prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


class ChunkMaker:
    """Builds the chunks of one stream, which all share an id, a timestamp and a model."""

    def __init__(self, envelope: Payload, *, include_usage: bool) -> None:
        self.envelope = envelope
        self.include_usage = include_usage

    def event(self, choices: list[Payload]) -> SseEvent:
        payload = {**self.envelope, "choices": choices}
        if self.include_usage:
            payload["usage"] = None
        return SseEvent(payload)

    def usage_event(self, usage: Payload) -> SseEvent:
        return SseEvent({**self.envelope, "choices": [], "usage": usage})


def _chat_stream(model: str, answer: Answer, choices: int, knobs: Knobs, *,
                 include_usage: bool) -> SseReply:
    maker = ChunkMaker({
        "id": new_id("chatcmpl-"), "object": "chat.completion.chunk",
        "created": int(time.time()), "model": model, "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }, include_usage=include_usage)

    def chunk(index: int, delta: Payload, finish: str | None = None) -> SseEvent:
        return maker.event([{"index": index, "delta": delta, "logprobs": None,
                             "finish_reason": finish}])

    first, deltas = _chat_deltas(answer, knobs)
    tail = [chunk(i, {}, finish_reason(answer)) for i in range(choices)]
    if include_usage:
        tail.append(maker.usage_event(_chat_usage(answer, choices, knobs)))
    return SseReply(
        head=[chunk(i, first) for i in range(choices)],
        content=[chunk(i, delta) for delta in deltas for i in range(choices)],
        tail=[*tail, DONE],
        essential_field="choices",
    )


def _chat_deltas(answer: Answer, knobs: Knobs) -> tuple[Payload, list[Payload]]:
    """The opening delta and the content deltas of one choice."""
    if answer.tool_use is None:
        return ({"role": "assistant", "content": "", "refusal": None},
                [{"content": text} for text in answer.deltas(knobs.stream_chunks)])
    call = _tool_call(answer.tool_use, "")
    opening = {"role": "assistant", "content": None, "refusal": None,
               "tool_calls": [{"index": 0, **call}]}
    pieces = text_pieces(_arguments_text(answer), knobs.stream_chunks)
    return opening, [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in pieces]


def required_text(body: Payload, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ProviderError(400, f"you must provide a '{name}' parameter.", param=name)
    return value


def choice_count(body: Payload) -> int:
    count = body.get("n", 1)
    if count is None:
        return 1
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_CHOICES:
        raise ProviderError(400, f"'n' must be an integer between 1 and {MAX_CHOICES}.",
                            param="n")
    return count


def wants_stream_usage(body: Payload) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True
