"""A tenant's month as a FOCUS 1.2 cost and usage file (CSV), from the hourly rollups.

One row per hour × deployment × price version × token meter (input, cached input, cache write,
output), and one per hour × deployment for adjustments (ChargeCategory ``Adjustment``). Months and
hours are UTC, as cloud bills are. The gateway charges its list prices, with no discounts or
commitments, so BilledCost, EffectiveCost, ListCost and ContractedCost are the same exact amount
(10 places). Prices are per million tokens: PricingUnit ``1000000 Tokens``, PricingQuantity the
tokens divided by a million; ConsumedQuantity counts the tokens themselves.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import Sum
from django.http import HttpResponse

from apps.billing.models import HourlyRollup, Tenant
from apps.billing.reports.money import exact
from apps.routing.models import Deployment, PriceVersion

MILLION = Decimal(1_000_000)
HOUR = timedelta(hours=1)
COLUMNS = (
    "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
    "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ListUnitPrice", "ContractedUnitPrice",
    "PricingCategory", "PricingQuantity", "PricingUnit", "ConsumedQuantity", "ConsumedUnit",
    "ServiceCategory", "ServiceSubcategory", "ServiceName", "ProviderName", "PublisherName", "InvoiceIssuerName",
    "InvoiceId",
    "ResourceId", "ResourceName", "ResourceType", "SkuId", "SkuMeter", "SkuPriceId", "SkuPriceDetails", "Tags",
)


@dataclass(frozen=True, slots=True)
class Meter:
    name: str  # SkuMeter
    slug: str  # in ids
    quantity: str  # the rollup's token sum for it, after the subtraction below
    cost: str  # its rollup cost column
    price: str  # its PriceVersion column (blank ones cost the input price)


METERS = (
    Meter("Input Tokens", "input", "input_tokens", "input_cost_usd", "input_usd_per_mtok"),
    Meter("Cached Input Tokens", "cached-input", "cached_tokens", "cached_input_cost_usd", "cached_input_usd_per_mtok"),
    Meter("Cache Write Tokens", "cache-write", "cache_write_tokens", "cache_write_cost_usd",
          "cache_write_usd_per_mtok"),
    Meter("Output Tokens", "output", "completion_tokens", "output_cost_usd", "output_usd_per_mtok"),
)
GROUPED = ("bucket", "deployment_id", "provider", "public_model", "price_version_id")
SUMMED = ("prompt_tokens", "cached_tokens", "cache_write_tokens", "completion_tokens", "adjustments",
          "adjustment_usd", *(meter.cost for meter in METERS))


class FocusForm(forms.Form):
    month = forms.DateField(input_formats=["%Y-%m"], widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
                            help_text="A UTC calendar month.")


def focus_response(tenant: Tenant, month: date) -> HttpResponse:
    response = HttpResponse("".join(focus_csv(tenant, month)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="focus-{tenant.slug}-{month:%Y-%m}.csv"'
    return response


def focus_csv(tenant: Tenant, month: date) -> Iterator[str]:
    """The header, then the month's rows, hour by hour."""
    yield _line(COLUMNS)
    for row in focus_rows(tenant, month):
        yield _line([row.get(column) for column in COLUMNS])


def focus_rows(tenant: Tenant, month: date) -> Iterator[dict[str, Any]]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    sums = (HourlyRollup.objects.filter(tenant_id=tenant.pk, bucket__gte=start, bucket__lt=end)
            .values(*GROUPED).annotate(**{name: Sum(name) for name in SUMMED}).order_by(*GROUPED))
    groups = list(sums)
    names = _deployment_names({group["deployment_id"] for group in groups})
    versions = PriceVersion.objects.in_bulk({group["price_version_id"] for group in groups})
    account = {"BillingAccountId": tenant.slug, "BillingAccountName": tenant.name, "BillingCurrency": "USD",
               "BillingPeriodStart": _when(start), "BillingPeriodEnd": _when(end),
               # The tenant buys from the gateway's operator, who bills it; the LLM provider publishes the service.
               "ProviderName": settings.EDGE_INVOICE_ISSUER_NAME,
               "InvoiceIssuerName": settings.EDGE_INVOICE_ISSUER_NAME, "InvoiceId": None}
    for group in groups:
        group["input_tokens"] = group["prompt_tokens"] - group["cached_tokens"] - group["cache_write_tokens"]
        common = {**account, **_common(group, names)}
        for meter in METERS:
            if group[meter.quantity] or group[meter.cost]:
                yield {**common, **_usage(group, meter, versions.get(group["price_version_id"]))}
        if group["adjustments"]:
            yield {**common, **_adjustment(group)}


def _common(group: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    deployment, model, provider = group["deployment_id"], group["public_model"], group["provider"]
    tags = {"model": model, "provider": provider, "deployment": str(deployment),
            "price_version": str(group["price_version_id"])}
    return {
        "ChargePeriodStart": _when(group["bucket"]), "ChargePeriodEnd": _when(group["bucket"] + HOUR),
        "ChargeFrequency": "Usage-Based", "ServiceCategory": "AI and Machine Learning",
        "ServiceSubcategory": "Generative AI", "ServiceName": model or "(no model)",
        "PublisherName": provider or "(no provider)",
        "ResourceId": f"deployment/{deployment}" if deployment else None,
        "ResourceName": names.get(deployment) if deployment else None,
        "ResourceType": "Model Deployment" if deployment else None,
        "Tags": json.dumps(tags, separators=(",", ":"), sort_keys=True),
    }


def _usage(group: dict[str, Any], meter: Meter, version: PriceVersion | None) -> dict[str, Any]:
    tokens, cost = group[meter.quantity], group[meter.cost]
    unit_price = _unit_price(meter, version, tokens, cost)
    sku = f"{group['deployment_id']}/{meter.slug}"
    details = {"Meter": meter.name, "PriceVersionId": version.pk if version else None,
               "EffectiveFrom": _when(version.effective_from) if version else None,
               "UnitPriceUSDPer1000000Tokens": unit_price}
    return {
        "ChargeCategory": "Usage", "ChargeClass": None,
        "ChargeDescription": f"{meter.name} of {group['public_model']} via {group['provider']}",
        "BilledCost": exact(cost), "EffectiveCost": exact(cost), "ListCost": exact(cost), "ContractedCost": exact(cost),
        "ListUnitPrice": unit_price, "ContractedUnitPrice": unit_price,
        "PricingCategory": "Standard", "PricingQuantity": _plain(Decimal(tokens) / MILLION),
        # ConsumedQuantity is a Decimal in FOCUS: "600" would be read as an integer column.
        "PricingUnit": "1000000 Tokens", "ConsumedQuantity": f"{tokens}.0", "ConsumedUnit": "Tokens",
        "SkuId": sku, "SkuMeter": meter.name,
        "SkuPriceId": f"{sku}/price-version/{group['price_version_id']}" if group["price_version_id"] else sku,
        "SkuPriceDetails": json.dumps(details, sort_keys=True),
    }


def _adjustment(group: dict[str, Any]) -> dict[str, Any]:
    amount = exact(group["adjustment_usd"])
    return {
        "ChargeCategory": "Adjustment", "ChargeClass": None,
        "ChargeDescription": f"{group['adjustments']} adjustment(s) to requests to {group['public_model']}",
        "BilledCost": amount, "EffectiveCost": amount, "ListCost": amount, "ContractedCost": amount,
        "PricingCategory": None, "PricingQuantity": None, "PricingUnit": None,
    }


def _unit_price(meter: Meter, version: PriceVersion | None, tokens: int, cost: Decimal) -> str | None:
    """The version's price of the meter (blank cached and cache-write prices are the input price); without
    a version (rows from before versions, or one deleted), the hour's mean price, exact to 10 places."""
    if version is not None:
        price = getattr(version, meter.price)
        return exact(price if price is not None else version.input_usd_per_mtok)
    return exact(cost / tokens * MILLION) if tokens else None


def _deployment_names(ids: set[int]) -> dict[int, str]:
    found = Deployment.objects.filter(pk__in=ids).values_list("pk", "provider__name", "upstream_model")
    named = {pk: f"{provider} {upstream}" for pk, provider, upstream in found}
    return {pk: named.get(pk, f"deployment {pk} (deleted)") for pk in ids}


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def _line(cells: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(["" if cell is None else cell for cell in cells])
    return buffer.getvalue()
