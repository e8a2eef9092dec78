"""The cost report in a real Chromium: charts drawn above their tables, figures equal to the API's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from apps.billing.models import Tenant
from tests.factories import make_key, make_tenant
from tests.reports.conftest import DAY_1, END, START, fill, make_reader
from tests.reports.rollups import record

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("live_db")]


@pytest.fixture
def busy_tenant() -> tuple[Tenant, str]:
    """A month of traffic over several models and keys, and a key that may read it through the API."""
    tenant = make_tenant()
    _, reader = make_reader(tenant)
    keys = [make_key(tenant)[0] for _ in range(4)]
    fill(tenant, keys[:2])
    for day in range(1, 31):
        for n, model in enumerate(("gpt-big", "gpt-test", "claude-ish", "embed-small")[: 1 + day % 4]):
            at = datetime(2026, 11, day, 8 + n, tzinfo=UTC)
            record(tenant, at, key=keys[(day + n) % 4], model=model, prompt=2000 * (1 + day % 5) * (n + 1),
                   completion=900 * (1 + day % 3), cached=300 * (day % 2), status="error" if day % 9 == 0 else "ok",
                   hit=day % 7 == 0, avoided_usd=Decimal("0.0012345678") if day % 7 == 0 else Decimal(0))
    return tenant, reader


def test_the_report_draws_its_charts_and_shows_the_apis_figures(admin_page, gateway, busy_tenant):
    tenant, reader = busy_tenant
    admin_page.goto(f"/admin/billing/tenant/{tenant.pk}/change/")
    admin_page.get_by_role("link", name="Report and FOCUS export").click()
    admin_page.fill("#id_start", "2026-11-01")
    admin_page.fill("#id_end", "2026-11-30")
    admin_page.click("input[value=Show]")
    admin_page.locator("#table-rows").wait_for()
    admin_page.screenshot(path="/tmp/report-page.png", full_page=True)

    charts = admin_page.locator("svg.chart")
    assert charts.count() == 5
    for index in range(5):
        assert charts.nth(index).locator("rect").count() > 0  # bars (and the legend's keys) were drawn
        assert charts.nth(index).bounding_box()["height"] > 100
    page_total = Decimal(admin_page.locator("#total-spend .money").get_attribute("data-exact"))
    days = admin_page.locator("#table-periods tbody tr").count() - 1  # the total row
    api = httpx.get(f"{gateway.url}/v1/organization/costs", headers={"Authorization": f"Bearer {reader}"},
                    params={"start_time": int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()),
                            "end_time": int(datetime(2026, 12, 1, tzinfo=UTC).timestamp()), "limit": 30}, timeout=10)
    buckets = json.loads(api.text, parse_float=Decimal)["data"]
    assert days == len(buckets) == 30
    assert page_total == sum(r["amount"]["value"] for b in buckets for r in b["results"])
    first_day = admin_page.locator("#table-periods tbody tr").first.locator(".money").nth(2)  # spend
    assert Decimal(first_day.get_attribute("data-exact")) == sum(r["amount"]["value"] for r in buckets[0]["results"])


def test_every_tenants_report_is_linked_from_the_admin_index(admin_page, busy_tenant):
    admin_page.get_by_role("link", name="Costs of every tenant").click()
    admin_page.fill("#id_start", "2026-11-01")
    admin_page.fill("#id_end", "2026-11-30")
    admin_page.select_option("#id_group", "tenant")
    admin_page.select_option("#id_period", "week")
    admin_page.click("input[value=Show]")
    admin_page.locator("#table-rows").wait_for()
    admin_page.screenshot(path="/tmp/report-all-tenants.png", full_page=True)

    assert busy_tenant[0].slug in admin_page.locator("#table-rows").inner_text()
    assert START < END and DAY_1.month == 11
