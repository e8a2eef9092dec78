"""Rollup rows made directly, as the gateway's settle step adds each ledger row to them: one hourly
and one daily row per dimension (UTC buckets), measures added."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import F

from apps.billing.models import ApiKey, DailyRollup, HourlyRollup, Tenant
from apps.billing.reports.measures import SUMMED

PER_MTOK = Decimal(1_000_000)
PRICES = {"input": Decimal("0.15"), "cached": Decimal("0.075"), "write": Decimal("0.1875"), "output": Decimal("0.60")}


def record(
    tenant: Tenant, at: datetime, *, key: ApiKey | None = None, model: str = "gpt-test", provider: str = "prov-a",
    endpoint: str = "chat.completions", deployment_id: int = 1, price_version_id: int = 7, status: str = "ok",
    prompt: int = 1000, completion: int = 200, cached: int = 0, cache_write: int = 0, hit: bool = False,
    adjustment_usd: Decimal | None = None, avoided_usd: Decimal = Decimal(0),
) -> dict[str, Any]:
    """Add one ledger row's worth to the rollups: a request (costed at PRICES), or an adjustment of
    ``adjustment_usd``. Returns the measures added."""
    if adjustment_usd is not None:
        added: dict[str, Any] = {"adjustments": 1, "adjustment_usd": adjustment_usd}
    else:
        meters = {
            "input_cost_usd": (prompt - cached - cache_write) * PRICES["input"] / PER_MTOK,
            "cached_input_cost_usd": cached * PRICES["cached"] / PER_MTOK,
            "cache_write_cost_usd": cache_write * PRICES["write"] / PER_MTOK,
            "output_cost_usd": completion * PRICES["output"] / PER_MTOK,
        }
        meters = {name: value.quantize(Decimal("1E-10")) for name, value in meters.items()}
        if hit:  # a cache hit costs nothing; it avoided what the answer cost when it was made
            meters = dict.fromkeys(meters, Decimal(0))
        added = {
            f"requests_{status}": 1, "cache_hits": int(hit), "prompt_tokens": prompt, "completion_tokens": completion,
            "cached_tokens": cached, "cache_write_tokens": cache_write, "cost_usd": sum(meters.values()),
            "cost_avoided_usd": avoided_usd, **meters,
        }
    dimensions: dict[str, Any] = {
        "tenant_id": tenant.pk, "api_key_id": key.pk if key else 0, "endpoint": endpoint, "public_model": model,
        "provider": provider, "deployment_id": deployment_id, "price_version_id": price_version_id,
    }
    hour = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    for model_class, bucket in ((HourlyRollup, hour), (DailyRollup, hour.replace(hour=0))):
        row, _ = model_class.objects.get_or_create(bucket=bucket, **dimensions)
        model_class.objects.filter(pk=row.pk).update(**{name: F(name) + value for name, value in added.items()})
    return {name: added.get(name, 0) for name in SUMMED}
