"""Reading OpenAI chat messages, for adapters that translate them into another wire format.

The gateway checks only what it relies on before routing (``apps.proxy.parsing``); the rest of the
body reaches a translating adapter as the client sent it. Where a translation needs a parameter to
have a shape (an object to read, a list to walk), it asks for it through the readers here, which
refuse anything else with ``UntranslatableRequest`` naming the parameter: the client's fault, which
``TranslatingAdapter`` answers with a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

ToolCall = tuple[Mapping[str, Any], Mapping[str, Any]]  # an assistant's tool call and its function


class UntranslatableRequest(ValueError):
    """A parameter of the client's request whose type the provider's request cannot be built from."""

    def __init__(self, param: str, expected: str) -> None:
        super().__init__(f"Invalid type for '{param}': expected {expected}.")
        self.param = param


def object_at(value: Any, param: str) -> Mapping[str, Any]:
    """An optional object parameter: {} when absent."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UntranslatableRequest(param, "an object")
    return value


def array_at(value: Any, param: str) -> list[Any]:
    """An optional array parameter: [] when absent."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise UntranslatableRequest(param, "an array")
    return value


def parts_of(content: Any, param: str) -> list[Any]:
    """A message's content as a parts list (a string is one text part)."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else array_at(content, param)


def stop_sequences(stop: Any) -> list[str]:
    """``stop``: a string or an array of strings."""
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(sequence, str) for sequence in stop):
        return stop
    raise UntranslatableRequest("stop", "a string or an array of strings")


def tool_calls_of(message: Mapping[str, Any], param: str) -> list[ToolCall]:
    """An assistant message's ``tool_calls``, each with its ``function``."""
    calls = []
    for index, call in enumerate(array_at(message.get("tool_calls"), f"{param}.tool_calls")):
        call = object_at(call, f"{param}.tool_calls[{index}]")
        calls.append((call, object_at(call.get("function"), f"{param}.tool_calls[{index}].function")))
    return calls


def tool_functions(tools: Any) -> list[Mapping[str, Any]]:
    """The ``function`` of each tool in ``tools`` (entries that are not objects are left out)."""
    return [object_at(tool.get("function"), f"tools[{index}].function")
            for index, tool in enumerate(array_at(tools, "tools")) if isinstance(tool, dict)]


def offered_functions(body: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], Any]:
    """The functions a provider should be offered, and the ``tool_choice`` that remains to translate.

    OpenAI's ``{"type": "allowed_tools", "allowed_tools": {"mode", "tools"}}`` restricts the calls to
    some of the tools while keeping the list intact (for OpenAI's prompt cache); providers without
    it get only the allowed functions, and the mode as a plain choice ("auto" or "required").
    """
    functions = tool_functions(body["tools"]) if body.get("tools") else []
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "allowed_tools":
        return functions, choice
    allowed = object_at(choice.get("allowed_tools"), "tool_choice.allowed_tools")
    names = {object_at(tool.get("function"), "tool_choice.allowed_tools.tools[].function").get("name")
             for tool in array_at(allowed.get("tools"), "tool_choice.allowed_tools.tools") if isinstance(tool, dict)}
    mode = "required" if allowed.get("mode") == "required" else "auto"
    return [function for function in functions if function.get("name") in names], mode


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        return "\n".join(texts)
    return ""


def image_url_of(part: Mapping[str, Any], param: str) -> str:
    """The URL of an ``image_url`` part (a data: URL or a link)."""
    url = object_at(part.get("image_url"), f"{param}.image_url").get("url", "")
    if not isinstance(url, str):
        raise UntranslatableRequest(f"{param}.image_url.url", "a string")
    return url


def image_source(url: str) -> dict[str, str]:
    """An image_url as Anthropic's source: a data: URL becomes base64 data, anything else a URL."""
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[5:].partition(";base64,")
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def json_arguments(arguments: Any) -> Any:
    """A tool call's JSON ``arguments`` text as a value; unreadable or empty arguments as {}."""
    if not isinstance(arguments, str) or not arguments:
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
