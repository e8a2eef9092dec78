"""Reading OpenAI chat messages, for adapters that translate them into another wire format."""

from __future__ import annotations

from typing import Any

import orjson


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        return "\n".join(texts)
    return ""


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
