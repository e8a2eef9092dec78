"""A Responses request's body → checked parameters, or a 400 that names the offending one.

What every provider kind relies on is checked here, whoever serves the request: the types of ``input``
and its items, ``instructions``, tools, ``tool_choice``, ``text.format``, the sampling parameters,
``metadata``, ``store``, ``stream`` and ``previous_response_id``. Whether a non-OpenAI deployment can carry
it all is ``translate.py``'s question, asked only when such a deployment is tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.proxy.parsing import MAX_TOKENS_LIMIT, optional_count, parse_model
from apps.proxy.responses.checks import (
    array_at,
    invalid_value,
    missing,
    object_at,
    optional,
    optional_number,
    string_at,
    wrong_type,
)

ROLES = frozenset({"user", "assistant", "system", "developer"})
TOOL_CHOICES = frozenset({"auto", "none", "required"})
FORMATS = frozenset({"text", "json_schema", "json_object"})
METADATA_MAX_PAIRS = 16  # OpenAI's bounds on metadata
METADATA_KEY_MAX, METADATA_VALUE_MAX = 64, 512
MIN_OUTPUT_TOKENS = 16  # OpenAI refuses a smaller max_output_tokens


@dataclass(frozen=True, slots=True)
class Parsed:
    native: dict[str, Any]  # the client's body
    model: str
    items: list[dict[str, Any]]  # this turn's input as items (a string input is one user message)
    stream: bool
    store: bool
    previous_response_id: str | None


def parse_body(body: dict[str, Any]) -> Parsed:
    model = parse_model(body)
    items = input_items(body.get("input"))
    optional(body, "instructions", str, "a string")
    _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"))
    _check_text(body.get("text"))
    if (cap := optional_count(body, "max_output_tokens", maximum=MAX_TOKENS_LIMIT)) is not None and \
            cap < MIN_OUTPUT_TOKENS:
        raise invalid_value("max_output_tokens", f"expected an integer of at least {MIN_OUTPUT_TOKENS}, got {cap}.")
    optional_number(body, "temperature", 0, 2)
    optional_number(body, "top_p", 0, 1)
    _check_metadata(body.get("metadata"))
    for flag in ("stream", "store", "parallel_tool_calls", "background"):
        optional(body, flag, bool, "a boolean")
    if body.get("background") is True:  # polled with GET /v1/responses/{id}, which the gateway's store answers
        raise invalid_value("background", "background mode is not offered by this gateway; stream instead.")
    previous = optional(body, "previous_response_id", str, "a string")
    if previous == "":
        raise invalid_value("previous_response_id", "expected a response id, got an empty string.")
    return Parsed(native=body, model=model, items=items, stream=body.get("stream") is True,
                  store=body.get("store") is not False, previous_response_id=previous)


def input_items(value: Any) -> list[dict[str, Any]]:
    if value is None:
        raise missing("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    items = array_at(value, "input")
    if not items:
        raise invalid_value("input", "expected a non-empty string or array of input items.")
    return [_item(item, f"input[{index}]") for index, item in enumerate(items)]


def _item(value: Any, param: str) -> dict[str, Any]:
    item = object_at(value, param)
    kind = item.get("type", "message")
    if kind == "message":
        if not isinstance(item.get("role"), str) or item["role"] not in ROLES:
            raise invalid_value(f"{param}.role", f"expected one of {', '.join(sorted(ROLES))}.")
        _check_content(item.get("content"), f"{param}.content")
        return {"type": "message", **item}
    if kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            string_at(item.get(name), f"{param}.{name}")
    elif kind == "function_call_output":
        string_at(item.get("call_id"), f"{param}.call_id")
        output = item.get("output")
        if not isinstance(output, str):
            _check_content(output, f"{param}.output")
    elif not isinstance(kind, str):
        raise wrong_type(f"{param}.type", "a string", kind)
    return item


def _check_content(content: Any, param: str) -> None:
    if isinstance(content, str):
        return
    for index, part in enumerate(array_at(content, param)):
        where = f"{param}[{index}]"
        part = object_at(part, where)
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            string_at(part.get("text"), f"{where}.text")
        elif kind == "refusal":
            string_at(part.get("refusal"), f"{where}.refusal")
        elif kind == "input_image":
            if part.get("image_url") is None and part.get("file_id") is None:
                raise missing(f"{where}.image_url")
            optional(part, "image_url", str, "a string")
        elif not isinstance(kind, str):
            raise wrong_type(f"{where}.type", "a string", kind)


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    for index, tool in enumerate(array_at(tools, "tools")):
        tool = object_at(tool, f"tools[{index}]")
        kind = string_at(tool.get("type"), f"tools[{index}].type")
        if kind == "function":
            if not string_at(tool.get("name"), f"tools[{index}].name"):
                raise invalid_value(f"tools[{index}].name", "expected a non-empty string.")
            if tool.get("parameters") is not None:
                object_at(tool["parameters"], f"tools[{index}].parameters")


def _check_tool_choice(choice: Any) -> None:
    if choice is None or (isinstance(choice, str) and choice in TOOL_CHOICES):
        return
    if isinstance(choice, str):
        raise invalid_value("tool_choice", f"expected one of {', '.join(sorted(TOOL_CHOICES))} or an object.")
    choice = object_at(choice, "tool_choice")
    kind = string_at(choice.get("type"), "tool_choice.type")
    if kind == "function":
        string_at(choice.get("name"), "tool_choice.name")


def _check_text(text: Any) -> None:
    if text is None:
        return
    text_format = object_at(text, "text").get("format")
    if text_format is None:
        return
    kind = object_at(text_format, "text.format").get("type")
    if not isinstance(kind, str) or kind not in FORMATS:
        raise invalid_value("text.format.type", f"expected one of {', '.join(sorted(FORMATS))}.")
    if kind == "json_schema":
        if not string_at(text_format.get("name"), "text.format.name"):
            raise invalid_value("text.format.name", "expected a non-empty string.")
        object_at(text_format.get("schema"), "text.format.schema")


def _check_metadata(metadata: Any) -> None:
    if metadata is None:
        return
    pairs = object_at(metadata, "metadata")
    if len(pairs) > METADATA_MAX_PAIRS:
        raise invalid_value("metadata", f"expected at most {METADATA_MAX_PAIRS} pairs, got {len(pairs)}.")
    for key, value in pairs.items():
        if len(key) > METADATA_KEY_MAX or not isinstance(value, str) or len(value) > METADATA_VALUE_MAX:
            raise invalid_value("metadata", f"keys are strings of at most {METADATA_KEY_MAX} characters and values "
                                            f"strings of at most {METADATA_VALUE_MAX}.")
