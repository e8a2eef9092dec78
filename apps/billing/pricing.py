"""Token usage → USD, in Decimal all the way."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from apps.providers.contracts import Usage

MILLION = Decimal(1_000_000)
COST_QUANTUM = Decimal("0.0000000001")  # the ledger's 10 decimal places


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens, as configured on a deployment when the request was served."""

    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    cached_input_usd_per_mtok: Decimal


def cost_of(usage: Usage, prices: Prices) -> Decimal:
    """Cached prompt tokens are billed at the cached price, the rest of the prompt at the input price."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    total = (
        (usage.prompt_tokens - cached) * prices.input_usd_per_mtok
        + cached * prices.cached_input_usd_per_mtok
        + usage.completion_tokens * prices.output_usd_per_mtok
    )
    return (total / MILLION).quantize(COST_QUANTUM)
