"""The price versions a routing snapshot holds: per deployment, from the one before the version in effect at
load time on, so a request is costed with the version in effect when it arrived (apps.routing.table)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from apps.routing.models import PriceVersion
from apps.routing.prices import Prices


def price_schedules(now: datetime) -> dict[int, tuple[Prices, ...]]:
    """Deployment id → its versions from the one before the version in effect ``now`` on (one query)."""
    every: dict[int, list[Prices]] = {}
    for version in PriceVersion.objects.order_by("deployment_id", "effective_from"):
        every.setdefault(version.deployment_id, []).append(version_prices(version))
    schedules = {}
    for deployment_id, versions in every.items():
        in_effect = sum(1 for prices in versions if prices.effective_from and prices.effective_from <= now) - 1
        schedules[deployment_id] = tuple(versions[max(in_effect - 1, 0):])
    return schedules


def version_prices(version: PriceVersion) -> Prices:
    """A stored version as requests use it: blank optional prices are the input price."""
    return Prices(
        input_usd_per_mtok=version.input_usd_per_mtok,
        output_usd_per_mtok=version.output_usd_per_mtok,
        cached_input_usd_per_mtok=or_input_price(version.cached_input_usd_per_mtok, version.input_usd_per_mtok),
        cache_write_usd_per_mtok=or_input_price(version.cache_write_usd_per_mtok, version.input_usd_per_mtok),
        version_id=version.pk,
        effective_from=version.effective_from,
    )


def next_change(schedules: Mapping[int, tuple[Prices, ...]], now: datetime) -> float | None:
    upcoming = [prices.effective_from for schedule in schedules.values() for prices in schedule
                if prices.effective_from is not None and prices.effective_from > now]
    return min(upcoming).timestamp() if upcoming else None


def or_input_price(price: Decimal | None, input_price: Decimal) -> Decimal:
    """A blank optional price means the input price."""
    return price if price is not None else input_price
