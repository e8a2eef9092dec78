"""OpenAI chat completion request → Anthropic Messages request.

Everything with an Anthropic counterpart is carried: system and developer messages (into
``system``), history with images and tool calls and results, tools and tool_choice (including
``parallel_tool_calls: false``), stop sequences, temperature, top_p, max tokens, the end user, and
``response_format`` as structured outputs (``output_config.format``; ``json_object`` as a schema
that admits any object). OpenAI-only parameters (seed, logprobs, penalties…) are not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.providers.adapters.openai_messages import image_source, json_arguments, text_of

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
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        out["tools"] = [_tool(tool) for tool in body["tools"] if isinstance(tool, dict)]
    if tool_choice := _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls")):
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
    for message in messages:
        role = message.get("role")
        if role in SYSTEM_ROLES:
            system.append(text_of(message.get("content")))
            continue
        if role == "assistant":
            role, blocks = "assistant", _assistant_blocks(message)
        else:
            role, blocks = "user", _user_blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # tool results of parallel calls share one user turn
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(part for part in system if part), turns


def _user_blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    if message.get("role") == "tool":
        return [{"type": "tool_result", "tool_use_id": message.get("tool_call_id", ""),
                 "content": text_of(message.get("content"))}]
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for part in content or [] if (block := _part(part)) is not None]


def _assistant_blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if text := text_of(message.get("content")):
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
                       "input": json_arguments(function.get("arguments"))})
    return blocks


def _part(part: Any) -> dict[str, Any] | None:
    if not isinstance(part, dict):
        return None
    if part.get("type") == "text":
        return {"type": "text", "text": part.get("text", "")}
    if part.get("type") == "image_url":
        url = str((part.get("image_url") or {}).get("url", ""))
        return {"type": "image", "source": image_source(url)}
    return None  # audio and file parts have no Messages counterpart



def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
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
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        return {"type": "json_schema", "schema": schema}
    if response_format.get("type") == "json_object":
        return {"type": "json_schema", "schema": {"type": "object"}}
    return None  # "text" is the default
