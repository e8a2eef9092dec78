"""A deployment's prices as requests use them: routing ranks deployments by them, billing costs usage with them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens: one price version of a deployment (apps.routing.models.PriceVersion)."""

    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    cached_input_usd_per_mtok: Decimal
    cache_write_usd_per_mtok: Decimal
    version_id: int | None = None  # None: not a stored version (a deployment without one, explicit prices)
    effective_from: datetime | None = None  # None: in effect since always


def prices_at(schedule: Sequence[Prices], moment: datetime) -> Prices:
    """The version of ``schedule`` (ascending by effective_from, not empty) in effect at ``moment``; the
    earliest when ``moment`` precedes them all (a request older than every version the snapshot holds)."""
    chosen = schedule[0]
    for prices in schedule[1:]:
        if prices.effective_from is not None and prices.effective_from > moment:
            break
        chosen = prices
    return chosen
