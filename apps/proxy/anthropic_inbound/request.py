"""Anthropic Messages request → the gateway's OpenAI-shaped ``ChatRequest``.

``system`` becomes a system message; text and image blocks become content parts (base64 images as
data: URLs); ``tool_use`` blocks become tool_calls; ``tool_result`` blocks become tool messages;
tools, tool_choice (with ``disable_parallel_tool_use``), stop_sequences, temperature, top_p,
max_tokens, metadata.user_id and ``output_config.format`` or the beta's ``output_format`` (as
``response_format``) map to their OpenAI names. ``top_k`` and ``thinking`` have no OpenAI
counterpart and are not carried.

What the translation reads must have the type Anthropic documents; anything else is refused with
Anthropic's own wording (``metadata: Input should be a valid dictionary``), as a 400.
"""

from __future__ import annotations

from typing import Any

import orjson

from apps.providers.contracts import ChatRequest
from apps.proxy.errors import InvalidRequest
from apps.proxy.parsing import MAX_TOKENS_LIMIT, optional_count, parse_model

PARAMETERS = {"temperature": "temperature", "top_p": "top_p", "max_tokens": "max_tokens"}


def chat_request(body: dict[str, Any]) -> ChatRequest:
    model = required_model(body)
    if optional_count(body, "max_tokens", maximum=MAX_TOKENS_LIMIT) is None:
        raise InvalidRequest("max_tokens: Field required (an integer)", param="max_tokens")
    if not isinstance(body.get("stream", False), bool):
        raise InvalidRequest("stream: Input should be a valid boolean", param="stream")
    stream = body.get("stream") is True
    chat = chat_body(body, model)
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return ChatRequest(model=model, body=chat, stream=stream, include_usage=stream)


def required_model(body: dict[str, Any]) -> str:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("model: Field required", param="model")
    return parse_model(body)


def chat_body(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The chat completion body a Messages request (or a count_tokens one, which has no max_tokens) becomes."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest("messages: a non-empty array of messages is required", param="messages")
    chat: dict[str, Any] = {"model": model, "messages": _system(body.get("system")) + _messages(messages)}
    chat.update({ours: body[theirs] for theirs, ours in PARAMETERS.items() if body.get(theirs) is not None})
    if body.get("stop_sequences") is not None:
        chat["stop"] = _strings(body["stop_sequences"], "stop_sequences")
    if isinstance(body.get("tools"), list):
        chat["tools"] = [_tool(tool) for tool in body["tools"] if isinstance(tool, dict)]
    chat.update(_tool_choice(body.get("tool_choice")))
    if response_format := _response_format(body.get("output_config"), body.get("output_format")):
        chat["response_format"] = response_format
    if isinstance(user := _object(body.get("metadata"), "metadata").get("user_id"), str):
        chat["user"] = user
    return chat


def _object(value: Any, param: str) -> dict[str, Any]:
    """An optional object: {} when absent."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{param}: Input should be a valid dictionary", param=param)
    return value


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"{param}: Input should be a valid list", param=param)
    return value


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{param}: Input should be a valid string", param=param)
    return value


def _strings(value: Any, param: str) -> list[str]:
    return [_text(text, f"{param}.{index}") for index, text in enumerate(_list(value, param))]


def _system(system: Any) -> list[dict[str, Any]]:
    if system is not None and not isinstance(system, str):
        system = "\n\n".join(_text(_object(block, f"system.{index}").get("text", ""), f"system.{index}.text")
                             for index, block in enumerate(_list(system, "system")))
    return [{"role": "system", "content": system}] if system else []


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        blocks = _blocks(message.get("content"), f"messages.{index}.content")
        if message.get("role") == "assistant":
            out.append(_assistant(blocks))
            continue
        out.extend(_tool_message(block) for block in blocks if block.get("type") == "tool_result")
        parts = [part for block in blocks if (part := _part(block)) is not None]
        if parts:
            out.append({"role": "user", "content": parts})
    return out


def _blocks(content: Any, param: str) -> list[dict[str, Any]]:
    """A message's content blocks (a string is one text block), checked for the types read from them."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = [_object(block, f"{param}.{index}") for index, block in enumerate(_list(content, param))]
    for index, block in enumerate(blocks):
        where = f"{param}.{index}"
        if block.get("type") == "text":
            _text(block.get("text"), f"{where}.text")
        elif block.get("type") == "image":
            _object(block.get("source"), f"{where}.source")
        elif block.get("type") == "tool_result" and not isinstance(block.get("content"), str | None):
            for number, part in enumerate(_list(block["content"], f"{where}.content")):
                _text(_object(part, f"{where}.content.{number}").get("text", ""), f"{where}.content.{number}.text")
    return blocks


def _assistant(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    text = "".join(block["text"] for block in blocks if block.get("type") == "text")
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    calls = [
        {"id": block.get("id", ""), "type": "function",
         "function": {"name": block.get("name", ""), "arguments": orjson.dumps(block.get("input") or {}).decode()}}
        for block in blocks if block.get("type") == "tool_use"
    ]
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_message(block: dict[str, Any]) -> dict[str, Any]:
    content = block.get("content")
    if isinstance(content, list):
        content = "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": content or ""}


def _part(block: dict[str, Any]) -> dict[str, Any] | None:
    if block.get("type") == "text":
        return {"type": "text", "text": block["text"]}
    if block.get("type") == "image":
        source = block.get("source") or {}
        url = (f"data:{source.get('media_type', '')};base64,{source.get('data', '')}"
               if source.get("type") == "base64" else str(source.get("url", "")))
        return {"type": "image_url", "image_url": {"url": url}}
    return None


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = {"name": tool.get("name", ""), "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _response_format(output_config: Any, beta_output_format: Any) -> dict[str, Any] | None:
    """``output_config.format``, or ``output_format`` as the structured-outputs beta (and older SDKs) sent it."""
    output_format = _object(_object(output_config, "output_config").get("format"), "output_config.format")
    if not output_format:
        output_format = _object(beta_output_format, "output_format")
    if output_format.get("type") != "json_schema":
        return None
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": output_format.get("schema") or {}}}


def _tool_choice(choice: Any) -> dict[str, Any]:
    if not isinstance(choice, dict):
        return {}
    kind = choice.get("type")
    out: dict[str, Any] = {}
    if kind in ("auto", "none"):
        out["tool_choice"] = kind
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out
