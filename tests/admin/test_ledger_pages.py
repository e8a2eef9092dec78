"""The ledger list at scale: a bounded time range, pages by (created_at, id) cursor, totals from rollups."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.billing.admin import LedgerEntryAdmin
from apps.billing.models import DailyRollup
from tests.admin.conftest import BASE_TIME, LEDGER_RANGE, make_entry
from tests.factories import make_route, make_tenant
from tests.harness.rollups import rebuild_rollups

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:billing_ledgerentry_changelist"


def listed(html: str) -> list[str]:
    return re.findall(r'<td class="field-request_id">([^<]+)</td>', html)


def link(html: str, name: str) -> str:
    """The query string of the newer/older link; "" when the page has none."""
    found = re.search(rf'<a href="([^"]+)" id="page-{name}">', html)
    return found.group(1).replace("&amp;", "&") if found else ""


def test_it_pages_through_the_ledger_by_cursor_without_counting_or_offsets(admin_client, monkeypatch):
    monkeypatch.setattr(LedgerEntryAdmin, "list_per_page", 3)
    tenant = make_tenant()
    moment = BASE_TIME + timedelta(days=3)  # three rows share a timestamp: the id breaks the tie
    entries = [make_entry(tenant, created_at=moment) for _ in range(3)] + [make_entry(tenant) for _ in range(4)]
    newest_first = sorted(entries, key=lambda entry: (entry.created_at, entry.pk), reverse=True)
    url = reverse(CHANGELIST)

    with CaptureQueriesContext(connection) as queries:
        first = admin_client.get(url, {**LEDGER_RANGE, "tenant__id__exact": tenant.pk}).content.decode()
        second = admin_client.get(url + link(first, "older")).content.decode()
        third = admin_client.get(url + link(second, "older")).content.decode()
        back = admin_client.get(url + link(third, "newer")).content.decode()

    ids = [entry.request_id for entry in newest_first]
    assert (listed(first), listed(second), listed(third)) == (ids[:3], ids[3:6], ids[6:])
    assert listed(back) == ids[3:6]
    assert link(first, "newer") == "" and link(third, "older") == ""
    sql = " ".join(query["sql"].upper() for query in queries.captured_queries)
    assert "COUNT(" not in sql and "OFFSET" not in sql
    assert "billing_ledgerentry" in sql.lower()  # the rows were read, and by LIMIT alone


def test_it_shows_the_last_24_hours_unless_asked_for_a_range(admin_client):
    tenant = make_tenant()
    recent = make_entry(tenant, created_at=timezone.now() - timedelta(hours=2))
    older = make_entry(tenant, created_at=timezone.now() - timedelta(days=3))
    url = reverse(CHANGELIST)

    default = admin_client.get(url, {"tenant__id__exact": tenant.pk}).content.decode()
    week = admin_client.get(url, {"tenant__id__exact": tenant.pk,
                                  "since": f"{timezone.now() - timedelta(days=7):%Y-%m-%d}"}).content.decode()

    assert listed(default) == [recent.request_id]
    assert listed(week) == [recent.request_id, older.request_id]
    assert 'class="selected"><a href="?tenant__id__exact' in default  # "Last 24 hours" is marked as chosen


def test_it_finds_a_request_id_from_any_date(admin_client):
    entry = make_entry(make_tenant())  # a month before the default range

    page = admin_client.get(reverse(CHANGELIST), {"q": entry.request_id}).content.decode()

    assert listed(page) == [entry.request_id]
    assert "every date (a search)" in page


def test_it_cuts_a_range_longer_than_31_days(admin_client):
    page = admin_client.get(reverse(CHANGELIST), {"since": "2026-01-01", "until": "2026-06-30"}).content.decode()

    assert "2026-01-01 00:00 to 2026-02-01 00:00 UTC</span> (cut to 31 days)" in page


def test_it_totals_a_range_from_the_rollups_not_the_ledger(admin_client):
    tenant = make_tenant()
    make_entry(tenant, cost_usd=Decimal("0.2500000000"), cost_avoided_usd=Decimal("0.0100000000"))
    make_entry(tenant, cost_usd=Decimal("0.0000000001"), status="error", http_status=502)
    rebuild_rollups()
    # A rollup row the ledger does not have: only a total read from the rollups includes it (whole days
    # of a range come from the daily table).
    DailyRollup.objects.create(bucket=BASE_TIME.replace(day=5, hour=0), tenant_id=tenant.pk, requests_ok=1,
                                cost_usd=Decimal(1))

    page = admin_client.get(reverse(CHANGELIST), {**LEDGER_RANGE, "tenant__id__exact": tenant.pk})

    assert page.context["totals"].requests == 3
    assert page.context["filtered_cost"] == "1.2500000001"
    assert page.context["filtered_cost_avoided"] == "0.0100000000"


def test_it_says_which_filters_the_totals_follow(admin_client):
    tenant = make_tenant()
    make_entry(tenant, status="error", http_status=500)

    page = admin_client.get(reverse(CHANGELIST), {**LEDGER_RANGE, "tenant__id__exact": tenant.pk, "status": "error"})

    assert page.context["totals"] is None
    assert "totals are kept per tenant, key, provider and model" in page.content.decode()


@pytest.mark.parametrize("query", [{"older": "not-a-cursor"}, {"since": "yesterday"}, {"since": "2026-11-02",
                                                                                       "until": "2026-11-01"}])
def test_it_answers_a_mangled_query_string_with_the_admins_error_page(admin_client, query):
    response = admin_client.get(reverse(CHANGELIST), query)

    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def ledger_reads(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if 'FROM "billing_ledgerentry"' in query["sql"]]


def test_a_filter_the_rollups_count_no_row_for_reads_no_ledger_rows(admin_client):
    make_route("http://127.0.0.1:9/v1", name="never-served")  # configured, so the model filter offers it
    make_entry(make_tenant(), public_model="gpt-busy")

    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(reverse(CHANGELIST), {**LEDGER_RANGE, "model": "never-served"})

    assert page.status_code == 200 and page.context["cl"].result_count == 0
    assert ledger_reads(queries) == []


def test_rare_rows_spread_over_days_page_in_order_to_the_last(admin_client, monkeypatch):
    monkeypatch.setattr(LedgerEntryAdmin, "list_per_page", 2)
    make_route("http://127.0.0.1:9/v1", name="rare-model")  # the model filter offers configured models
    tenant = make_tenant()
    rare = [make_entry(tenant, public_model="rare-model", created_at=BASE_TIME + timedelta(days=day, hours=day))
            for day in (1, 1, 4, 9, 9, 15, 22)]
    for day in range(0, 25, 2):
        make_entry(tenant, public_model="common-model", created_at=BASE_TIME + timedelta(days=day))
    url = reverse(CHANGELIST)

    seen, html = [], admin_client.get(url, {**LEDGER_RANGE, "model": "rare-model", "status": "ok"}).content.decode()
    while True:
        seen += listed(html)
        if not link(html, "older"):
            break
        html = admin_client.get(url + link(html, "older")).content.decode()

    assert seen == [entry.request_id for entry in sorted(rare, key=lambda e: (e.created_at, e.pk), reverse=True)]


def test_a_page_is_whole_even_when_the_rollups_count_rows_the_ledger_lacks(admin_client, monkeypatch):
    monkeypatch.setattr(LedgerEntryAdmin, "list_per_page", 2)
    tenant = make_tenant()
    older = [make_entry(tenant, created_at=BASE_TIME + timedelta(days=1, minutes=minute)) for minute in range(2)]
    make_entry(tenant, created_at=BASE_TIME + timedelta(days=3))
    # Drift: the rollups claim three more rows two days back, so a bound there would miss the older rows.
    DailyRollup.objects.create(bucket=(BASE_TIME + timedelta(days=2)).replace(hour=0), tenant_id=tenant.pk,
                               requests_ok=3)

    page = admin_client.get(reverse(CHANGELIST), {**LEDGER_RANGE, "tenant__id__exact": tenant.pk}).content.decode()

    assert len(listed(page)) == 2 and listed(page)[1] == older[1].request_id


def test_it_never_claims_a_page_is_all_there_is(admin_client, monkeypatch):
    monkeypatch.setattr(LedgerEntryAdmin, "list_per_page", 2)
    tenant = make_tenant()
    for _ in range(3):
        make_entry(tenant)

    html = admin_client.get(reverse(CHANGELIST), {**LEDGER_RANGE, "tenant__id__exact": tenant.pk}).content.decode()

    assert len(listed(html)) == 2 and link(html, "older")
    assert "2 results" not in html and "Show all" not in html
