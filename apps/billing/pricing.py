"""Token usage → USD, in Decimal all the way."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, Decimal

from apps.providers.contracts import Usage
from apps.routing.prices import Prices

MILLION = Decimal(1_000_000)
COST_QUANTUM = Decimal("0.0000000001")  # the ledger's 10 decimal places


def worst_case_cost(prompt_tokens: int, output_tokens: int, prices: Iterable[Prices]) -> Decimal:
    """The most a request may cost on any of these deployments: every prompt token at the dearest of
    the three prompt prices, and every output token it may generate."""
    worst = max(
        (prompt_tokens * max(price.input_usd_per_mtok, price.cached_input_usd_per_mtok, price.cache_write_usd_per_mtok)
         + output_tokens * price.output_usd_per_mtok for price in prices),
        default=Decimal(0),
    )
    return (worst / MILLION).quantize(COST_QUANTUM, rounding=ROUND_CEILING)


def cost_of(usage: Usage, prices: Prices) -> Decimal:
    """Each prompt token at one price: cache writes at the write price, cache reads at the cached price,
    the rest at the input price; completion tokens at the output price.

    Every adapter reports ``prompt_tokens`` as everything sent, OpenAI's way: OpenAI, Azure and
    Gemini include their cached tokens in it and never report cache writes; Anthropic's adapter adds
    its cache reads (``cached_tokens``) and cache writes (``cache_creation_tokens``) to its
    ``input_tokens``. So reads and writes are two disjoint parts of ``prompt_tokens``, and the plain
    part is what is left of it; the clamps keep a token from being billed twice should a provider
    report parts larger than the whole.
    """
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_creation_tokens, usage.prompt_tokens - cached)
    total = (
        (usage.prompt_tokens - cached - written) * prices.input_usd_per_mtok
        + cached * prices.cached_input_usd_per_mtok
        + written * prices.cache_write_usd_per_mtok
        + usage.completion_tokens * prices.output_usd_per_mtok
    )
    return (total / MILLION).quantize(COST_QUANTUM)
