"""A cached answer: a canonical ``chat.completion`` body plus what the ledger needs to account a hit.

Streams are stored assembled into a completion, so a streamed request can be answered from a plain
one's answer and the other way round. The wire form is one JSON header line, a newline, and the
body exactly as the client first received it (no re-encoding of what may be megabytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import orjson

from apps.providers.contracts import Usage

ENTRY_OVERHEAD_BYTES = 256  # the key, the dataclass and the LRU's bookkeeping, roughly


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    content: bytes  # an OpenAI chat.completion JSON object
    usage: Usage  # the original answer's usage, with its source (provider or estimated)
    cost_usd: Decimal  # what the original answer cost: the spend each hit avoids

    @property
    def size(self) -> int:
        return len(self.content) + ENTRY_OVERHEAD_BYTES

    def to_bytes(self) -> bytes:
        usage = self.usage
        header = [usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.source, f"{self.cost_usd:f}",
                  usage.cache_creation_tokens]
        return orjson.dumps(header) + b"\n" + self.content

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedAnswer | None:
        """None for anything this release did not write (an older format, a foreign value)."""
        header, _, content = data.partition(b"\n")
        try:
            prompt, completion, cached, source, cost, written = orjson.loads(header)
            usage = Usage(int(prompt), int(completion), int(cached), source, cache_creation_tokens=int(written))
            return cls(content=content, usage=usage, cost_usd=Decimal(cost))
        except (ValueError, TypeError, ArithmeticError):
            return None
