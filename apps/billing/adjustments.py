"""Adjustment rows: corrections of requests' costs, written as new ledger rows, never as edits.

``adjustment_row()`` builds one in the form the spool's rows have, so it enters the ledger (and the
rollups) through ``apps.billing.ledger_write.write_rows`` like every other row. An adjustment carries
its request's tenant, key and route, no tokens, the amount it adds to the request's cost, and is dated
when it is made: budgets count it in their current period (``count_adjustments``), as the period's
rebuild from the ledger (by ``created_at``) would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.utils import timezone

from apps.billing.admission import admission
from apps.billing.ledger import new_request_id
from apps.billing.limits import Subject, key_subject, tenant_subject
from apps.billing.models import ApiKey, Tenant
from apps.billing.rows import Row
from apps.routing.prices import Prices

# What an adjustment copies from the request it adjusts.
COPIED = ("tenant_id", "api_key_id", "endpoint", "public_model", "provider", "deployment_id", "upstream_model",
          "http_status")
PRICE_NAMES = ("input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok", "cache_write_usd_per_mtok")


def adjustment_row(request: Mapping[str, Any], *, amount_usd: Decimal, note: str, prices: Prices | None = None) -> Row:
    """An adjustment of ``request`` (its ledger columns) by ``amount_usd``; ``prices``: those it re-rates to."""
    return {
        "request_id": new_request_id().replace("req_", "adj_"),
        "kind": "adjustment",
        "adjusts_id": request["request_id"],
        "note": note,
        **{name: request[name] for name in COPIED},
        "stream": False,
        "status": "ok",
        "created_at": timezone.now().isoformat(),
        "latency_ms": 0,
        "cost_usd": f"{amount_usd:f}",
        **{name: (f"{getattr(prices, name):f}" if prices else None) for name in PRICE_NAMES},
        "price_version_id": prices.version_id if prices else None,
    }


def count_adjustments(rows: Iterable[Row]) -> None:
    """Count committed adjustment rows against their keys' and tenants' budgets (one call per key)."""
    totals: dict[tuple[int, int | None], Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[row["tenant_id"], row["api_key_id"]] += Decimal(row["cost_usd"])
    tenants = Tenant.objects.in_bulk({tenant_id for tenant_id, _ in totals})
    keys = ApiKey.objects.select_related("tenant").in_bulk({key_id for _, key_id in totals if key_id is not None})
    for (tenant_id, key_id), amount in totals.items():
        subjects: tuple[Subject, ...] = (tenant_subject(tenants[tenant_id]),)
        if key_id is not None:
            subjects += (key_subject(keys[key_id]),)
        admission.count_spend(request_id=new_request_id().replace("req_", "adj_"), subjects=subjects, cost_usd=amount)
