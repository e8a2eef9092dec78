"""A deployment's prices as requests use them: routing ranks deployments by them, billing costs usage with them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens, as configured on a deployment when the request was served."""

    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    cached_input_usd_per_mtok: Decimal
    cache_write_usd_per_mtok: Decimal
