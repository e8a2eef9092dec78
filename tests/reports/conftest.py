"""Shared data for the report tests: two tenants' rollups over two days, and keys that may read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import openai
import pytest

from apps.billing.models import ApiKey, DailyRollup, HourlyRollup, Tenant
from tests.factories import make_key, make_tenant
from tests.reports.rollups import record

DAY_1 = datetime(2026, 11, 3, tzinfo=UTC)
DAY_2 = datetime(2026, 11, 4, tzinfo=UTC)
START, END = int(DAY_1.timestamp()), int(datetime(2026, 11, 5, tzinfo=UTC).timestamp())


@dataclass
class Costs:
    tenant: Tenant
    reader: ApiKey
    reader_raw: str  # a key with the reports scope
    caller: ApiKey
    caller_raw: str  # a key without it
    other: Tenant  # another tenant, with bigger numbers


def make_reader(tenant: Tenant) -> tuple[ApiKey, str]:
    key, raw = make_key(tenant)
    ApiKey.objects.filter(pk=key.pk).update(reports_scope=True)
    return key, raw


def spend(tenant: Tenant, model: type[HourlyRollup] | type[DailyRollup] = HourlyRollup, **filters: object) -> Decimal:
    """The tenant's spend in the rollups, summed by the database: what every report must equal."""
    rows = model.objects.filter(tenant_id=tenant.pk, **filters)
    return sum((row.cost_usd + row.adjustment_usd for row in rows), Decimal(0))


def fill(tenant: Tenant, keys: list[ApiKey], scale: int = 1) -> None:
    """Requests over two UTC days: two models, two providers, chat and embeddings, an error, a cache hit
    and a credit; amounts with all ten decimal places in use."""
    first, second = keys[0], keys[-1]
    record(tenant, DAY_1.replace(hour=9, minute=5), key=first, prompt=1234 * scale, completion=321, cached=200)
    record(tenant, DAY_1.replace(hour=9, minute=40), key=first, model="gpt-big", provider="prov-b", deployment_id=2,
           price_version_id=9, prompt=777 * scale, completion=1001, cache_write=111)
    record(tenant, DAY_1.replace(hour=23, minute=59), key=second, endpoint="embeddings", model="embed-small",
           deployment_id=3, prompt=5003 * scale, completion=0)
    record(tenant, DAY_2.replace(hour=0, minute=1), key=second, status="error", prompt=0, completion=0)
    record(tenant, DAY_2.replace(hour=14), key=first, hit=True, avoided_usd=Decimal("0.0001234567"), prompt=99,
           completion=7)
    record(tenant, DAY_2.replace(hour=15), key=first, endpoint="messages", prompt=3333 * scale, completion=2222)
    record(tenant, DAY_2.replace(hour=16), key=first, adjustment_usd=Decimal("-0.0000123457"))


@pytest.fixture
def costs(live_db: None) -> Costs:
    tenant, other = make_tenant(), make_tenant()
    reader, reader_raw = make_reader(tenant)
    caller, caller_raw = make_key(tenant)
    fill(tenant, [reader, caller])
    other_key, _ = make_key(other)
    fill(other, [other_key], scale=1000)
    return Costs(tenant, reader, reader_raw, caller, caller_raw, other)


def sdk(gateway_url: str, raw_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=raw_key, admin_api_key=raw_key, max_retries=0)
