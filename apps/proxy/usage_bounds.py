"""How much usage a provider may believably report for a request, and what is billed when it reports more.

A provider's usage is priced and written to the ledger, so it is checked first: whole, non-negative
numbers of tokens, the prompt at most what the request's body could hold, the completion at most
what the request allowed it to generate. Anything else (a negative count, 2**31 tokens for a
"hello", 1e300) is not believed: the request is billed on the gateway's own estimate, clamped to the
same bounds, and the ledger row says why (``usage_note``). So a cost is never negative and never
above what the request could cost at most.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from apps.providers.contracts import Usage
from apps.providers.tokens import MEDIA_PART_TOKENS
from apps.routing.table import ModelRoute

logger = logging.getLogger(__name__)

# What a provider adds to a prompt that the client never sent: Anthropic's tool-use system prompt
# (a few hundred tokens), chat-format overheads.
PROMPT_MARGIN_TOKENS = 1_000
# A completion may run a little past a cap as providers count it (stop sequences, n > 1 rounding).
COMPLETION_MARGIN = 0.01
COMPLETION_MARGIN_TOKENS = 16


@dataclass(frozen=True, slots=True)
class UsageBounds:
    prompt_tokens: int
    completion_tokens: int

    @classmethod
    def of(cls, *, body_bytes: int, media_parts: int, output_tokens: int) -> UsageBounds:
        # Every token of byte-level BPE covers at least one byte, so the body's length bounds its text.
        prompt = body_bytes + media_parts * MEDIA_PART_TOKENS + PROMPT_MARGIN_TOKENS
        completion = int(output_tokens * (1 + COMPLETION_MARGIN)) + COMPLETION_MARGIN_TOKENS
        return cls(prompt_tokens=prompt, completion_tokens=completion)

    def doubt(self, usage: Usage) -> str:
        """Why ``usage`` is not believable for this request, or "" when it is."""
        counts = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                  "cached_tokens": usage.cached_tokens, "cache_creation_tokens": usage.cache_creation_tokens}
        for name, value in counts.items():
            if type(value) is not int or value < 0:
                return f"provider reported {name}={_shown(value)}, not a whole non-negative number"
        for name, reported, bound in (("prompt", usage.prompt_tokens, self.prompt_tokens),
                                      ("completion", usage.completion_tokens, self.completion_tokens)):
            if reported > bound:
                return f"provider reported {_shown(reported)} {name} tokens, above this request's bound of {bound}"
        if usage.cached_tokens + usage.cache_creation_tokens > usage.prompt_tokens:
            return "provider reported more cached and cache-write tokens than prompt tokens"
        return ""

    def clamp(self, usage: Usage) -> Usage:
        prompt = min(max(usage.prompt_tokens, 0), self.prompt_tokens)
        cached = min(max(usage.cached_tokens, 0), prompt)
        return dataclasses.replace(
            usage, prompt_tokens=prompt, completion_tokens=min(max(usage.completion_tokens, 0), self.completion_tokens),
            cached_tokens=cached, cache_creation_tokens=min(max(usage.cache_creation_tokens, 0), prompt - cached),
        )


def _shown(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (Python refuses past 4,300 digits)
        return "a number too large to print"
    return text if len(text) <= 40 else text[:37] + "..."


def believed_usage(reported: Usage, estimate: Callable[[], Usage], bounds: UsageBounds | None,
                   *, request_id: str) -> tuple[Usage, str]:
    """The usage to bill and, when it is not the provider's, why (the ledger's ``usage_note``)."""
    doubt = "" if reported.source == "none" or bounds is None else bounds.doubt(reported)
    if reported.source != "none" and not doubt:
        return reported, ""
    if doubt:
        logger.warning("usage not believed for %s: %s; billed on the gateway's estimate", request_id, doubt)
    try:
        usage = estimate()
    except Exception:  # an answer too broken to read: nothing to count; the row says so
        logger.exception("usage estimate failed for %s", request_id)
        return Usage(source="estimated"), (doubt or "the gateway could not estimate usage")[:300]
    return (bounds.clamp(usage) if bounds else usage), doubt[:300]


def output_cap(requested: int | None, route: ModelRoute) -> int:
    """Output tokens a request may generate: its own cap, else the most any deployment it may reach
    allows (``Deployment.max_output_tokens``, else EDGE_DEFAULT_MAX_OUTPUT_TOKENS)."""
    if requested is not None:
        return requested
    default: int = settings.EDGE_DEFAULT_MAX_OUTPUT_TOKENS
    return max((target.max_output_tokens or default for target in route.reachable_targets()), default=default)
