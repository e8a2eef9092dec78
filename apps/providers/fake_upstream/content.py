"""Deterministic reply text and token counts, shared by both wire formats.

Tests compute exact costs from these numbers, so they are a contract:

* A word is a whitespace-separated run of characters (`len(text.split())`).
* Chat prompt tokens (OpenAI chat, Anthropic messages) = the words of every text
  content of every message (a string, or parts/blocks of type "text"; Anthropic
  tool_result blocks count their text too) + 3 per message. Anthropic's `system`
  adds its words, with no per-message overhead. Tool definitions are free.
* Legacy completion prompt tokens = the words of the prompt (summed over a list).
* Embedding tokens = the words of each input; a token-id array counts its length.
* The reply is "Mock reply to: " + the first 8 words of the last user message,
  padded with "lorem ipsum ..." or truncated to `reply_words` words (default 12),
  then truncated to `max_tokens` / `max_completion_tokens` words if smaller
  (finish_reason "length" / stop_reason "max_tokens").
* A JSON reply (structured output, see directives.py) is the JSON text instead, its words counted
  the same way and cut at `max_tokens` words too (which leaves it invalid, as a real model's would be).
* Completion tokens = the words of the reply, per choice, summed over `n`.
  A tool call costs TOOL_CALL_TOKENS.
* Cached tokens = min(knob `cached_tokens`, prompt tokens). As with the real
  APIs, OpenAI's prompt_tokens includes them, while Anthropic's input_tokens
  excludes them (they are reported as cache_read_input_tokens instead).
* Cache-write tokens (Anthropic only) = min(knob `cache_write_tokens`, prompt
  tokens - cached tokens), reported as cache_creation_input_tokens and, like
  cache reads, left out of input_tokens.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .directives import JsonOutput, ToolUse, json_reply_text
from .rules import Knobs

MESSAGE_OVERHEAD_TOKENS = 3
TOOL_CALL_TOKENS = 10
ARGUMENT_DELTAS = 4  # fragments a streamed tool call's arguments arrive in, unless stream_chunks says
ECHOED_WORDS = 8
PADDING = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    """A unique id in the provider's style; a counter is enough and costs nothing."""
    return f"{prefix}fake{next(_ids):020d}"


@dataclass(frozen=True)
class Answer:
    """One choice's reply, before a wire format dresses it.

    A text reply's words are joined by single spaces; a JSON reply's words keep the whitespace that
    precedes them (``joiner`` is then ""), so its text comes back byte for byte.
    """

    words: list[str]
    truncated: bool
    tool_use: ToolUse | None
    prompt_tokens: int
    cached_tokens: int
    cache_write_tokens: int = 0
    joiner: str = " "

    @property
    def text(self) -> str:
        return self.joiner.join(self.words)

    def deltas(self, chunk_count: int | None) -> list[str]:
        """Stream deltas that concatenate back to the reply's text."""
        if self.joiner == " ":
            return split_into_deltas(self.words, chunk_count)
        return ["".join(group) for group in _groups(self.words, chunk_count)] or [""]

    @property
    def completion_tokens(self) -> int:
        return TOOL_CALL_TOKENS if self.tool_use else len(self.words)


def compose_answer(
    *,
    prompt_text: str,
    prompt_tokens: int,
    knobs: Knobs,
    max_tokens: object,
    tool_use: ToolUse | None,
    json_output: JsonOutput | None = None,
) -> Answer:
    word_count, truncated = reply_limit(knobs.reply_words, max_tokens)
    joiner = " "
    if knobs.huge_body_mb:
        words, truncated = [huge_text(knobs.huge_body_mb)], False
    else:
        words = reply_words(prompt_text, word_count)
    if json_output is not None and tool_use is None and not knobs.huge_body_mb:
        words = json_words(json_reply_text(json_output, " ".join(words)))
        word_count, truncated = reply_limit(len(words), max_tokens)
        words, joiner = words[:word_count], ""
    return Answer(
        words=words,
        joiner=joiner,
        truncated=truncated and tool_use is None,
        tool_use=tool_use,
        prompt_tokens=prompt_tokens,
        cached_tokens=min(knobs.cached_tokens, prompt_tokens),
        cache_write_tokens=min(knobs.cache_write_tokens, prompt_tokens - min(knobs.cached_tokens, prompt_tokens)),
    )


def count_words(text: str) -> int:
    return len(text.split())


def text_of(content: object) -> str:
    """The plain text in a message's content, whichever shape the client used."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "tool_result":
            texts.append(text_of(part.get("content")))
    return " ".join(texts)


def prompt_tokens_of_messages(messages: Iterable[Any], system: object = None) -> int:
    tokens = count_words(text_of(system))
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        tokens += count_words(text_of(content)) + MESSAGE_OVERHEAD_TOKENS
    return tokens


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def reply_words(prompt_text: str, word_count: int) -> list[str]:
    """The reply for a prompt, as exactly `word_count` words."""
    words = ["Mock", "reply", "to:", *prompt_text.split()[:ECHOED_WORDS]]
    padding = itertools.cycle(PADDING)
    while len(words) < word_count:
        words.append(next(padding))
    return words[:word_count]


def reply_limit(knob_words: int, max_tokens: object) -> tuple[int, bool]:
    """How many words to send, and whether the client's max_tokens cut the reply short."""
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens < knob_words:
        return max(max_tokens, 0), True
    return knob_words, False


def split_into_deltas(words: list[str], chunk_count: int | None) -> list[str]:
    """Stream deltas that concatenate back to the reply; never more deltas than words."""
    if not words:
        return [""]
    groups = [" ".join(group) for group in _groups(words, chunk_count)]
    return [groups[0], *(" " + text for text in groups[1:])]


def json_words(text: str) -> list[str]:
    """JSON text as words, each carrying the whitespace before it, so that "".join() restores it."""
    return re.findall(r"\s*\S+", text)


def _groups(items: list[str], chunk_count: int | None) -> list[list[str]]:
    """`items` in `chunk_count` runs (one per item when None) of as near equal length as can be."""
    if not items:
        return []
    count = min(chunk_count or len(items), len(items))
    size, extra = divmod(len(items), count)
    groups, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        groups.append(items[start:end])
        start = end
    return groups


def text_pieces(text: str, chunk_count: int | None) -> list[str]:
    """`text` cut anywhere into `chunk_count` pieces (default ARGUMENT_DELTAS): tool-call arguments
    stream in fragments that are not JSON on their own, as real providers send them."""
    characters = list(text)
    return ["".join(group) for group in _groups(characters, chunk_count or ARGUMENT_DELTAS)] or [""]


def huge_text(megabytes: float) -> str:
    return "x" * int(megabytes * 1024 * 1024)


def embedding_input_tokens(item: object) -> int:
    if isinstance(item, str):
        return count_words(item)
    return len(item) if isinstance(item, list) else 0


def embedding_vector(item: object, dimensions: int) -> list[float]:
    """A stable vector per input, made of float32-exact values so base64 round-trips."""
    digest = hashlib.shake_256(repr(item).encode()).digest(dimensions * 2)
    return [
        (int.from_bytes(digest[i : i + 2], "little") - 32768) / 32768
        for i in range(0, dimensions * 2, 2)
    ]


def encode_base64_floats(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
