"""What a report row counts: the rollups' measures summed, and the figures derived from them."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from django.db.models import Sum

ZERO = Decimal(0)
# The rollup columns a report sums (all of them but latency, which reports do not show).
SUMMED = (
    "requests_ok", "requests_error", "requests_cancelled", "adjustments", "cache_hits", "prompt_tokens",
    "completion_tokens", "cached_tokens", "cache_write_tokens", "cost_usd", "adjustment_usd",
    "input_cost_usd", "cached_input_cost_usd", "cache_write_cost_usd", "output_cost_usd", "cost_avoided_usd",
)


@dataclass(slots=True)
class Measures:
    """Sums over some rollup rows; money exact (Decimal, 10 places as stored)."""

    requests_ok: int = 0
    requests_error: int = 0
    requests_cancelled: int = 0
    adjustments: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal = ZERO
    adjustment_usd: Decimal = ZERO
    input_cost_usd: Decimal = ZERO
    cached_input_cost_usd: Decimal = ZERO
    cache_write_cost_usd: Decimal = ZERO
    output_cost_usd: Decimal = ZERO
    cost_avoided_usd: Decimal = ZERO

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Measures:
        """From a ``.values(...).annotate(**sums())`` row (a Sum of no rows is None)."""
        return cls(**{name: values[name] or _zero_of(name) for name in SUMMED})  # type: ignore[arg-type]

    def add(self, other: Measures) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @property
    def requests(self) -> int:
        return self.requests_ok + self.requests_error + self.requests_cancelled

    @property
    def spend_usd(self) -> Decimal:
        """What the tenant is charged: request costs plus adjustments (credits are negative)."""
        return self.cost_usd + self.adjustment_usd

    @property
    def error_rate(self) -> float | None:
        """Errors per request, for display only (no money): None when there were no requests."""
        return self.requests_error / self.requests if self.requests else None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def sums() -> dict[str, Sum]:
    return {name: Sum(name) for name in SUMMED}


def total(rows: list[Measures]) -> Measures:
    result = Measures()
    for row in rows:
        result.add(row)
    return result


def _zero_of(name: str) -> int | Decimal:
    return ZERO if name.endswith("_usd") else 0
