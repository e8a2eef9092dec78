"""OpenAI's Responses API (`POST /v1/responses`), whole and streamed, as an `openai` deployment sees it.

Rules (they extend content.py's contract):

* Prompt tokens = the words of `instructions` + for each input item that is a message or a
  `function_call_output`, the words of its text + 3. A string `input` is one user message.
* The reply echoes the last user message's text, as chat's does, capped by `max_output_tokens`
  (status "incomplete", reason "max_output_tokens").
* Function calls and JSON replies follow directives.py, read from the Responses fields: function
  tools (`{"type": "function", "name", "parameters"}`), `tool_choice` ("auto", "none", "required",
  or `{"type": "function", "name"}`), and `text.format` of type json_schema (its `schema`) or
  json_object. Other tool types (web_search, …) are accepted and never called.
* The stream: response.created, response.in_progress, the output item's added / delta / done
  events, response.completed (or response.incomplete) carrying the usage; every event numbered.
  Text arrives as output_text deltas, a call's arguments in fragments; fault knobs that target
  stream content hit those delta events.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from .content import MESSAGE_OVERHEAD_TOKENS, Answer, compose_answer, count_words, new_id, text_pieces
from .directives import JsonOutput, OfferedTool, ToolChoice, choose_tool
from .openai_wire import required_text
from .replies import JsonReply, Payload, ProviderError, SseEvent, SseReply
from .rules import Knobs

ECHOED = ("instructions", "max_output_tokens", "metadata", "temperature", "top_p", "previous_response_id", "store")


def response(body: Payload, knobs: Knobs) -> JsonReply | SseReply:
    model = required_text(body, "model")
    items = _input_items(body.get("input"))
    answer = compose_answer(
        prompt_text=_last_user_text(items), prompt_tokens=_prompt_tokens(body, items), knobs=knobs,
        max_tokens=body.get("max_output_tokens"),
        tool_use=choose_tool(_offered_tools(body), _tool_choice(body), knobs), json_output=_json_output(body))
    envelope = _envelope(body, model)
    if body.get("stream"):
        return _stream(envelope, answer, knobs)
    return JsonReply(_finished(envelope, _output(answer), answer, knobs), essential_field="output")


def _input_items(value: object) -> list[Payload]:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise ProviderError(400, "'input' must be a string or a non-empty array.", param="input")
    return [item for item in value if isinstance(item, dict)]


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(str(part.get("text", "")) for part in parts if isinstance(part, dict)
                    and part.get("type") in ("input_text", "output_text"))


def _prompt_tokens(body: Payload, items: list[Payload]) -> int:
    tokens = count_words(body["instructions"]) if isinstance(body.get("instructions"), str) else 0
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            tokens += count_words(_text(item.get("content"))) + MESSAGE_OVERHEAD_TOKENS
        elif kind == "function_call_output":
            tokens += count_words(_text(item.get("output"))) + MESSAGE_OVERHEAD_TOKENS
    return tokens


def _last_user_text(items: list[Payload]) -> str:
    for item in reversed(items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            return _text(item.get("content"))
    return ""


def _offered_tools(body: Payload) -> list[OfferedTool]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [OfferedTool(tool["name"], tool.get("parameters")) for tool in tools
            if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("name"), str)]


def _tool_choice(body: Payload) -> ToolChoice:
    choice = body.get("tool_choice")
    if choice in ("auto", "none", "required"):
        return ToolChoice(choice)
    if isinstance(choice, dict) and choice.get("type") == "function":
        return ToolChoice("required", (str(choice.get("name")),))
    return ToolChoice("auto")


def _json_output(body: Payload) -> JsonOutput | None:
    text = body.get("text")
    text_format = text.get("format") if isinstance(text, dict) else None
    if not isinstance(text_format, dict):
        return None
    if text_format.get("type") == "json_object":
        return JsonOutput(None)
    if text_format.get("type") == "json_schema":
        schema = text_format.get("schema")
        return JsonOutput(schema if isinstance(schema, dict) else None)
    return None


def _envelope(body: Payload, model: str) -> Payload:
    envelope: Payload = {
        "id": new_id("resp_"), "object": "response", "created_at": int(time.time()), "status": "in_progress",
        "error": None, "incomplete_details": None, "model": model, "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [], "truncation": "disabled", "usage": None,
    }
    envelope.update({name: body.get(name) for name in ECHOED})
    return envelope


def _output(answer: Answer) -> list[Payload]:
    if answer.tool_use:
        arguments = orjson.dumps(answer.tool_use.arguments).decode()
        return [{"id": new_id("fc_"), "type": "function_call", "status": "completed", "call_id": new_id("call_"),
                 "name": answer.tool_use.name, "arguments": arguments}]
    return [{"id": new_id("msg_"), "type": "message", "status": "completed", "role": "assistant",
             "content": [_part(answer.text)]}]


def _part(text: str) -> Payload:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _usage(answer: Answer, knobs: Knobs) -> Payload:
    usage = {
        "input_tokens": answer.prompt_tokens,
        "input_tokens_details": {"cached_tokens": answer.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": answer.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }
    return {**usage, **(knobs.reported_usage or {})}


def _finished(envelope: Payload, output: list[Payload], answer: Answer, knobs: Knobs) -> Payload:
    finished = {**envelope, "output": output, "status": "incomplete" if answer.truncated else "completed",
                "incomplete_details": {"reason": "max_output_tokens"} if answer.truncated else None,
                "usage": None if knobs.no_usage else _usage(answer, knobs)}
    if knobs.no_usage:
        del finished["usage"]
    return finished


def _stream(envelope: Payload, answer: Answer, knobs: Knobs) -> SseReply:
    numbers = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> SseEvent:
        return SseEvent({"type": kind, "sequence_number": next(numbers), **fields}, name=kind)

    item = _output(answer)[0]
    head = [event("response.created", response=envelope), event("response.in_progress", response=envelope)]
    if item["type"] == "function_call":
        head.append(event("response.output_item.added", output_index=0, item={**item, "arguments": "",
                                                                              "status": "in_progress"}))
        content = [event("response.function_call_arguments.delta", item_id=item["id"], output_index=0,
                         delta=piece) for piece in text_pieces(item["arguments"], knobs.stream_chunks)]
        done = [event("response.function_call_arguments.done", item_id=item["id"], output_index=0,
                      name=item["name"], arguments=item["arguments"])]
    else:
        text = item["content"][0]["text"]
        head.append(event("response.output_item.added", output_index=0,
                          item={**item, "content": [], "status": "in_progress"}))
        head.append(event("response.content_part.added", item_id=item["id"], output_index=0, content_index=0,
                          part=_part("")))
        content = [event("response.output_text.delta", item_id=item["id"], output_index=0, content_index=0,
                         delta=delta, logprobs=[]) for delta in answer.deltas(knobs.stream_chunks)]
        done = [event("response.output_text.done", item_id=item["id"], output_index=0, content_index=0, text=text,
                      logprobs=[]),
                event("response.content_part.done", item_id=item["id"], output_index=0, content_index=0,
                      part=_part(text))]
    done.append(event("response.output_item.done", output_index=0, item=item))
    final = _finished(envelope, [item], answer, knobs)
    done.append(event(f"response.{final['status']}", response=final))
    return SseReply(head=head, content=content, tail=done, essential_field="delta")
