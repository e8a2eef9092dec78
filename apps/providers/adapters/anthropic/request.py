"""OpenAI chat completion request → Anthropic Messages request.

Everything with an Anthropic counterpart is carried: system and developer messages (into
``system``), history with images and tool calls and results, tools and tool_choice (including
``parallel_tool_calls: false``, and ``allowed_tools`` as the allowed tools alone), stop sequences,
temperature, top_p, max tokens, the end user, and ``response_format`` as structured outputs
(``output_config.format``; ``json_object`` as a schema that admits any object). OpenAI-only
parameters (seed, logprobs, penalties…) are not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.providers.adapters.openai_messages import (
    image_source,
    image_url_of,
    json_arguments,
    object_at,
    offered_functions,
    parts_of,
    stop_sequences,
    text_of,
    tool_calls_of,
)

# Anthropic requires max_tokens; OpenAI clients usually leave it out.
DEFAULT_MAX_TOKENS = 4096
SYSTEM_ROLES = {"system", "developer"}


def messages_body(body: Mapping[str, Any], upstream_model: str, *, stream: bool) -> dict[str, Any]:
    system, messages = _split_system(body.get("messages") or [])
    out: dict[str, Any] = {
        "model": upstream_model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        out["system"] = system
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if stop := body.get("stop"):
        out["stop_sequences"] = stop_sequences(stop)
    functions, choice = offered_functions(body)
    if functions:
        out["tools"] = [_tool(function) for function in functions]
    if tool_choice := _tool_choice(choice, body.get("parallel_tool_calls")):
        out["tool_choice"] = tool_choice
    if output_format := _output_format(body.get("response_format")):
        out["output_config"] = {"format": output_format}
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if stream:
        out["stream"] = True
    return out


def _split_system(messages: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role, where = message.get("role"), f"messages[{index}]"
        if role in SYSTEM_ROLES:
            system.append(text_of(message.get("content")))
            continue
        if role == "assistant":
            role, blocks = "assistant", _assistant_blocks(message, where)
        else:
            role, blocks = "user", _user_blocks(message, where)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # tool results of parallel calls share one user turn
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(part for part in system if part), turns


def _user_blocks(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    if message.get("role") == "tool":
        return [{"type": "tool_result", "tool_use_id": message.get("tool_call_id", ""),
                 "content": text_of(message.get("content"))}]
    parts = parts_of(message.get("content"), f"{where}.content")
    blocks = (_part(part, f"{where}.content[{index}]") for index, part in enumerate(parts))
    return [block for block in blocks if block is not None]


def _assistant_blocks(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if text := text_of(message.get("content")):
        blocks.append({"type": "text", "text": text})
    for call, function in tool_calls_of(message, where):
        blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
                       "input": json_arguments(function.get("arguments"))})
    return blocks


def _part(part: Any, where: str) -> dict[str, Any] | None:
    if not isinstance(part, dict):
        return None
    if part.get("type") == "text":
        return {"type": "text", "text": part.get("text", "")}
    if part.get("type") == "image_url":
        return {"type": "image", "source": image_source(image_url_of(part, where))}
    return None  # audio and file parts have no Messages counterpart


def _tool(function: Mapping[str, Any]) -> dict[str, Any]:
    out = {"name": function.get("name", ""), "input_schema": function.get("parameters") or {"type": "object"}}
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        out: dict[str, Any] = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name", "")}
    elif choice == "auto" or parallel is False:
        out = {"type": "auto"}
    else:
        return None
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _output_format(response_format: Any) -> dict[str, Any] | None:
    response_format = object_at(response_format, "response_format")
    if response_format.get("type") == "json_schema":
        schema = object_at(response_format.get("json_schema"), "response_format.json_schema").get("schema")
        schema = schema or {"type": "object"}
        return {"type": "json_schema", "schema": schema}
    if response_format.get("type") == "json_object":
        return {"type": "json_schema", "schema": {"type": "object"}}
    return None  # "text" is the default
