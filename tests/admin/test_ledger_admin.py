"""Ledger admin: read-only history, exact CSV exports, and corrections as new rows."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode

import pytest
from django.contrib.auth.models import Permission
from django.forms.models import model_to_dict
from django.urls import reverse

from apps.billing import csv_export
from apps.billing.models import LedgerEntry
from tests.admin.conftest import BASE_TIME, LEDGER_RANGE, count_queries, make_entry, read_stream
from tests.factories import make_key, make_tenant
from tests.harness.rollups import rebuild_rollups

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:billing_ledgerentry_changelist"
EXPORT = "admin:billing_ledgerentry_export"


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_it_offers_no_add_edit_or_delete(admin_client):
    entry = make_entry(make_tenant())
    change_url = reverse("admin:billing_ledgerentry_change", args=[entry.pk])

    add = admin_client.get(reverse("admin:billing_ledgerentry_add"))
    delete = admin_client.post(reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"})
    edit = admin_client.post(change_url, {"cost_usd": "0", "status": "error"})
    page = admin_client.get(change_url).content.decode()
    listing = admin_client.get(reverse(CHANGELIST), LEDGER_RANGE).content.decode()

    assert (add.status_code, delete.status_code, edit.status_code) == (403, 403, 403)
    assert model_to_dict(LedgerEntry.objects.get(pk=entry.pk)) == model_to_dict(entry)
    assert "View ledger entry" in page and entry.request_id in page
    assert 'name="cost_usd"' not in page and 'value="Save"' not in page
    assert "delete_selected" not in listing and "Add ledger entry" not in listing


def test_it_shows_a_rows_cache_writes_with_the_price_they_were_billed_at(admin_client):
    entry = make_entry(make_tenant(), cache_write_tokens=1234, cache_write_usd_per_mtok=Decimal("3.750000"))

    page = admin_client.get(reverse("admin:billing_ledgerentry_change", args=[entry.pk])).content.decode()

    assert re.search(r'field-cache_write_tokens.*?<div class="readonly">1234</div>', page, re.DOTALL)
    assert re.search(r'field-cache_write_usd_per_mtok.*?<div class="readonly">3.750000</div>', page, re.DOTALL)


def test_it_exports_rows_with_every_amount_exact(admin_client):
    tenant = make_tenant()
    key, _ = make_key(tenant)
    entry = make_entry(tenant, key, cost_usd=Decimal("12.3456789012"), input_usd_per_mtok=Decimal("0.150000"),
                       output_usd_per_mtok=Decimal("0.600000"), cached_tokens=3, ttft_ms=40, cache_write_tokens=4,
                       cache_write_usd_per_mtok=Decimal("0.187500"))
    free = make_entry(tenant, key, cost_usd=Decimal(0), status="error", http_status=502, error_type="upstream_error",
                      usage_source="none", prompt_tokens=0, completion_tokens=0, public_model="=HYPERLINK(1)")

    response = admin_client.get(reverse(EXPORT), {**LEDGER_RANGE, "tenant__id__exact": tenant.pk})

    text = read_stream(response)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="ledger-')
    assert text.splitlines()[0] == ",".join(csv_export.HEADER)
    assert [row["request_id"] for row in rows(text)] == [free.request_id, entry.request_id]  # newest first
    assert rows(text)[1] == {
        "created_at": entry.created_at.isoformat(), "request_id": entry.request_id, "kind": "request",
        "adjusts": "", "tenant": tenant.slug, "key_prefix": key.prefix, "endpoint": "chat.completions",
        "public_model": "gpt-test", "provider": "prov-test", "upstream_model": "up-test", "stream": "false",
        "status": "ok", "http_status": "200", "error_type": "", "prompt_tokens": "10", "completion_tokens": "5",
        "cached_tokens": "3", "usage_source": "provider", "input_usd_per_mtok": "0.150000",
        "output_usd_per_mtok": "0.600000", "cached_input_usd_per_mtok": "", "cost_usd": "12.3456789012",
        "latency_ms": "120", "ttft_ms": "40", "note": "", "cache_status": "", "cost_avoided_usd": "0.0000000000",
        "cache_write_tokens": "4", "cache_write_usd_per_mtok": "0.187500",
    }
    assert rows(text)[0]["cost_usd"] == "0.0000000000"
    assert (rows(text)[0]["cache_write_tokens"], rows(text)[0]["cache_write_usd_per_mtok"]) == ("0", "")
    assert rows(text)[0]["public_model"] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it


def test_it_exports_only_what_the_filters_match(admin_client):
    tenant, other = make_tenant(), make_tenant()
    ok = make_entry(tenant)
    failed = make_entry(tenant, status="error", http_status=500)
    make_entry(other, status="error", http_status=500)

    by_tenant = read_stream(admin_client.get(reverse(EXPORT), {**LEDGER_RANGE, "tenant__id__exact": tenant.pk}))
    by_status = read_stream(admin_client.get(reverse(EXPORT), {**LEDGER_RANGE, "tenant__id__exact": tenant.pk,
                                                               "status": "error"}))
    by_search = read_stream(admin_client.get(reverse(EXPORT), {"q": ok.request_id}))

    assert {row["request_id"] for row in rows(by_tenant)} == {ok.request_id, failed.request_id}
    assert [row["request_id"] for row in rows(by_status)] == [failed.request_id]
    assert [row["request_id"] for row in rows(by_search)] == [ok.request_id]


def test_it_links_the_export_to_the_current_filters(admin_client):
    tenant = make_tenant()
    make_entry(tenant)

    query = {**LEDGER_RANGE, "tenant__id__exact": str(tenant.pk), "status": "ok"}
    page = admin_client.get(reverse(CHANGELIST), query).content.decode()

    link = re.search(r'href="([^"]+)" id="export-matching"', page)
    assert link is not None and link.group(1).startswith(reverse(EXPORT) + "?")
    assert dict(parse_qsl(link.group(1).replace("&amp;", "&").split("?", 1)[1])) == query


def test_it_exports_the_selected_rows(admin_client):
    tenant = make_tenant()
    first, _, third = (make_entry(tenant) for _ in range(3))

    response = admin_client.post(reverse(CHANGELIST) + "?" + urlencode(LEDGER_RANGE), {
        "action": "export_selected_csv", "_selected_action": [first.pk, third.pk],
    })

    assert [row["request_id"] for row in rows(read_stream(response))] == [third.request_id, first.request_id]


def test_it_streams_every_row_once_across_chunks(admin_client, monkeypatch):
    monkeypatch.setattr(csv_export, "CHUNK_ROWS", 2)
    tenant = make_tenant()
    same_moment = BASE_TIME + timedelta(days=20)  # rows sharing a timestamp straddle a chunk boundary
    entries = [make_entry(tenant, created_at=same_moment) for _ in range(3)] + [make_entry(tenant) for _ in range(2)]

    exported = rows(read_stream(admin_client.get(reverse(EXPORT), {**LEDGER_RANGE, "tenant__id__exact": tenant.pk})))

    assert sorted(row["request_id"] for row in exported) == sorted(entry.request_id for entry in entries)
    assert len(exported) == 5


def test_it_totals_the_cost_of_the_filtered_rows(admin_client):
    tenant = make_tenant()
    make_entry(tenant, cost_usd=Decimal("0.0000045000"))
    make_entry(tenant, cost_usd=Decimal("1.5000000001"))
    make_entry(make_tenant(), cost_usd=Decimal(7))

    rebuild_rollups()

    page = admin_client.get(reverse(CHANGELIST), {**LEDGER_RANGE, "tenant__id__exact": tenant.pk}).content.decode()

    assert "2 requests, spend <strong>1.5000045001 USD</strong>" in page


def test_it_records_an_adjustment_as_a_new_row_and_leaves_the_original(admin_client):
    tenant = make_tenant()
    key, _ = make_key(tenant)
    original = make_entry(tenant, key, cost_usd=Decimal("0.0200000000"))
    before = model_to_dict(original)
    change_page = admin_client.get(reverse("admin:billing_ledgerentry_change", args=[original.pk])).content.decode()
    adjust_url = reverse("admin:billing_ledgerentry_adjust", args=[original.pk])

    response = admin_client.post(adjust_url, {"amount_usd": "-0.0150000000", "note": "provider refund"}, follow=True)

    adjustment = LedgerEntry.objects.get(adjusts=original)
    assert f'href="{adjust_url}"' in change_page
    assert model_to_dict(LedgerEntry.objects.get(pk=original.pk)) == before
    assert adjustment.kind == "adjustment" and adjustment.note == "provider refund"
    assert adjustment.cost_usd == Decimal("-0.015") and (adjustment.tenant, adjustment.api_key) == (tenant, key)
    page = response.content.decode()
    assert adjustment.request_id in page and "0.0050000000" in page  # the original's net cost


@pytest.mark.parametrize(("amount", "note", "error"), [
    ("0.01", "  ", "This field is required."),
    ("0", "why", "An adjustment of zero changes nothing."),
    ("abc", "why", "Enter a number."),
])
def test_it_refuses_an_adjustment_without_an_amount_or_a_reason(admin_client, amount, note, error):
    original = make_entry(make_tenant())

    response = admin_client.post(reverse("admin:billing_ledgerentry_adjust", args=[original.pk]),
                                 {"amount_usd": amount, "note": note})

    assert response.status_code == 200 and error in response.content.decode()
    assert not LedgerEntry.objects.filter(adjusts=original).exists()


def test_it_lets_only_users_who_may_add_ledger_rows_adjust(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_ledgerentry"))
    client.force_login(viewer)
    original = make_entry(make_tenant())

    page = client.get(reverse("admin:billing_ledgerentry_change", args=[original.pk])).content.decode()
    response = client.post(reverse("admin:billing_ledgerentry_adjust", args=[original.pk]),
                           {"amount_usd": "1", "note": "sneaky"})

    assert original.request_id in page and "Add adjustment" not in page
    assert response.status_code == 403 and not LedgerEntry.objects.filter(adjusts=original).exists()


def test_it_finds_a_request_and_its_adjustments_by_request_id(admin_client):
    tenant = make_tenant()
    original, unrelated = make_entry(tenant), make_entry(tenant)
    admin_client.post(reverse("admin:billing_ledgerentry_adjust", args=[original.pk]),
                      {"amount_usd": "0.5", "note": "missed tokens"})
    adjustment = LedgerEntry.objects.get(adjusts=original)

    page = admin_client.get(reverse(CHANGELIST), {"q": original.request_id}).content.decode()

    assert original.request_id in page and adjustment.request_id in page and unrelated.request_id not in page


def test_it_lists_the_ledger_in_a_constant_number_of_queries(admin_client, django_assert_max_num_queries):
    url = reverse(CHANGELIST) + "?" + urlencode(LEDGER_RANGE)
    tenant = make_tenant()
    make_entry(tenant, make_key(tenant)[0])
    few = count_queries(lambda: admin_client.get(url))
    for _ in range(10):
        tenant = make_tenant()
        key, _ = make_key(tenant)
        make_entry(tenant, key)
        make_entry(tenant, None, status="error", http_status=401)

    with django_assert_max_num_queries(few):
        assert admin_client.get(url).status_code == 200
