"""Admin's cost report: every figure equals the rollups it sums, the CSV is the page, days are local."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from apps.billing.models import DailyRollup, Tenant
from tests.factories import make_key, make_tenant
from tests.reports.conftest import DAY_1, fill, spend
from tests.reports.html_tables import page_tables
from tests.reports.rollups import record

pytestmark = pytest.mark.django_db
RANGE = {"start": "2026-11-01", "end": "2026-11-30"}


@pytest.fixture
def tenant() -> Tenant:
    tenant = make_tenant()
    fill(tenant, [make_key(tenant)[0], make_key(tenant)[0]])
    return tenant


def report(client, tenant: Tenant | None, **params: str):
    if tenant is None:
        return client.get(reverse("admin:billing_tenant_reports"), {**RANGE, **params})
    url = reverse("admin:billing_tenant_report", args=[tenant.pk])
    return client.get(url, {**RANGE, **params})


def column(table: list[list[str]], title: str) -> list[str]:
    index = table[0].index(title)
    return [row[index] for row in table[1:]]


def test_every_table_adds_up_to_the_tenants_spend_in_the_rollups(admin_client, tenant):
    tables = page_tables(report(admin_client, tenant).content.decode())

    assert set(tables) == {"periods", "rows", "keys"}
    for table in tables.values():
        amounts = [Decimal(value) for value in column(table, "spend (USD)")]
        assert sum(amounts[:-1]) == amounts[-1] == spend(tenant)  # rows, then the total row


def test_a_money_cell_shows_cents_and_keeps_the_exact_amount(admin_client, tenant):
    html = report(admin_client, tenant).content.decode()

    exact = format(spend(tenant), "f")
    assert f'data-exact="{exact}"' in html and f'title="{exact} USD"' in html
    assert f"${spend(tenant).quantize(Decimal('0.01'))}" in html


@pytest.mark.parametrize("table", ["rows", "periods", "keys"])
@pytest.mark.parametrize("group", ["model", "provider", "key", "endpoint"])
def test_each_csv_holds_exactly_the_table_on_the_page(admin_client, tenant, table, group):
    shown = page_tables(report(admin_client, tenant, group=group, period="week").content.decode())[table]
    response = report(admin_client, tenant, group=group, period="week", export=table)

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == shown[0]
    for csv_row, page_row in zip(rows[1:], shown[1:], strict=True):
        cells = zip(rows[0], csv_row, page_row, strict=True)
        assert [same(title, c, p) for title, c, p in cells] == [True] * len(csv_row)


def same(title: str, in_csv: str, on_page: str) -> bool:
    """The CSV's cell is the page's: amounts to the digit, counts without separators, rates as fractions."""
    if title.endswith("(USD)") or title in ("period", "model", "provider", "key", "endpoint", "tenant"):
        return in_csv == on_page
    if title == "error rate":
        return in_csv == "" if on_page == "–" else abs(float(in_csv) * 100 - float(on_page.rstrip("%"))) < 0.005
    return in_csv == on_page.replace(",", "")


def test_days_are_the_tenants_local_days(admin_client):
    tenant = make_tenant()
    Tenant.objects.filter(pk=tenant.pk).update(timezone="America/New_York")
    record(tenant, datetime(2026, 11, 4, 3, 30, tzinfo=UTC))  # 22:30 on the 3rd in New York
    record(tenant, datetime(2026, 11, 4, 5, 30, tzinfo=UTC))  # 00:30 on the 4th

    periods = page_tables(report(admin_client, tenant).content.decode())["periods"]

    requests = dict(zip(column(periods, "period"), column(periods, "requests"), strict=True))
    assert (requests["2026-11-03"], requests["2026-11-04"], requests["total"]) == ("1", "1", "2")


def test_in_a_half_hour_zone_the_hour_across_midnight_counts_to_the_day_it_starts(admin_client):
    tenant = make_tenant()
    Tenant.objects.filter(pk=tenant.pk).update(timezone="Asia/Kolkata")  # UTC+05:30
    record(tenant, datetime(2026, 11, 3, 18, 45, tzinfo=UTC))  # 00:15 on the 4th, in the hour from 23:30 on the 3rd
    record(tenant, datetime(2026, 11, 3, 19, 10, tzinfo=UTC))  # 00:40 on the 4th

    periods = page_tables(report(admin_client, tenant).content.decode())["periods"]

    requests = dict(zip(column(periods, "period"), column(periods, "requests"), strict=True))
    assert (requests["2026-11-03"], requests["2026-11-04"]) == ("1", "1")


def test_every_tenants_report_sums_them_all_and_groups_by_tenant(admin_client, tenant):
    other = make_tenant()
    fill(other, [make_key(other)[0]], scale=7)

    tables = page_tables(report(admin_client, None, group="tenant", zone="UTC").content.decode())

    rows = list(zip(column(tables["rows"], "tenant"), map(Decimal, column(tables["rows"], "spend (USD)")), strict=True))
    for one in (tenant, other):
        assert sum(amount for slug, amount in rows if slug == one.slug) == spend(one)
    in_range = DailyRollup.objects.filter(bucket__gte=datetime(2026, 11, 1, tzinfo=UTC),
                                          bucket__lt=datetime(2026, 12, 1, tzinfo=UTC))
    everyone = sum(row.cost_usd + row.adjustment_usd for row in in_range)  # other tests' committed rows too
    assert rows[-1][1] == sum(amount for _, amount in rows[:-1]) == everyone


def test_the_admin_index_and_each_tenant_link_to_the_reports(admin_client, tenant):
    index = admin_client.get(reverse("admin:index")).content.decode()
    change = admin_client.get(reverse("admin:billing_tenant_change", args=[tenant.pk])).content.decode()

    assert reverse("admin:billing_tenant_reports") in index
    assert reverse("admin:billing_tenant_report", args=[tenant.pk]) in change


def test_staff_without_permission_to_view_tenants_are_refused(client, tenant):
    user = User.objects.create_user("clerk", password="pw-clerk-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_ledgerentry"))
    client.force_login(user)

    assert report(client, tenant).status_code == 403
    assert report(client, None).status_code == 403


def test_a_range_ending_before_it_starts_is_explained(admin_client, tenant):
    response = report(admin_client, tenant, start="2026-11-30", end="2026-11-01")

    assert "The end date is before the start date." in response.content.decode()
    assert "table-rows" not in response.content.decode()


def test_utc_reports_read_the_daily_rollups(admin_client, tenant):
    DailyRollup.objects.filter(tenant_id=tenant.pk, bucket=DAY_1).update(cost_usd=Decimal("1000"))

    tables = page_tables(report(admin_client, tenant).content.decode())

    assert Decimal(column(tables["periods"], "spend (USD)")[-1]) == spend(tenant, DailyRollup)
