"""The admin in a real Chromium, served by a real gateway process (the same ASGI app as /v1/)."""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from apps.billing.keys import hash_key
from apps.billing.models import ApiKey, LedgerEntry
from apps.providers.models import Provider
from tests.admin.conftest import make_entry
from tests.conftest import wait_until_served
from tests.factories import make_key, make_route, make_tenant, unique
from tests.harness.rollups import rebuild_rollups
from tests.harness.served import ledger_row

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("live_db")]
SECRET = "sk-upstream-browser-secret-7c1d"


def test_it_logs_in_to_a_styled_admin(admin_page):
    assert admin_page.locator("#site-name").inner_text() == "LLM Edge"
    assert admin_page.get_by_role("link", name="Ledger").is_visible()
    header_colour = admin_page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header_colour not in ("", "rgba(0, 0, 0, 0)")  # base.css was served and applied


def test_it_creates_a_provider_whose_key_never_comes_back(admin_page):
    name = unique("browser-provider")
    admin_page.goto("/admin/providers/provider/add/")
    admin_page.fill("#id_name", name)
    admin_page.select_option("#id_kind", "openai_compatible")
    admin_page.fill("#id_base_url", "https://llm.internal.example/v1")
    admin_page.fill("#id_api_key", SECRET)
    admin_page.click("input[name=_save]")
    admin_page.wait_for_url("**/admin/providers/provider/")

    provider = Provider.objects.get(name=name)
    admin_page.goto(f"/admin/providers/provider/{provider.pk}/change/")

    assert provider.api_key() == SECRET
    assert SECRET not in admin_page.content()
    assert admin_page.input_value("#id_api_key") == ""
    assert admin_page.locator(".field-api_key_set img").get_attribute("alt") == "True"


def test_it_issues_a_key_shows_it_once_and_revokes_it(admin_page, gateway, fake_v1):
    tenant = make_tenant()
    route = make_route(fake_v1)
    admin_page.goto("/admin/billing/apikey/add/")
    admin_page.select_option("#id_tenant", label=tenant.slug)
    admin_page.fill("#id_name", "browser test")
    admin_page.click("input[name=_save]")

    raw_key = admin_page.input_value("#raw-key")
    admin_page.screenshot(path="/tmp/admin-key-created.png", full_page=True)
    admin_page.click("#copy-raw-key")
    admin_page.get_by_text("Copied.").wait_for()
    copied = admin_page.evaluate("navigator.clipboard.readText()")
    key = ApiKey.objects.get(tenant=tenant)
    assert hash_key(raw_key) == key.key_hash and copied == raw_key
    assert admin_page.get_by_text("it will not be shown again").is_visible()

    wait_until_served(gateway.url, raw_key, route.model.name)
    completion = chat(gateway.url, raw_key, route.model.name)
    assert completion.status_code == 200

    admin_page.click("#done")
    admin_page.wait_for_url(f"**/admin/billing/apikey/{key.pk}/change/")
    assert raw_key not in admin_page.content() and key.prefix in admin_page.content()

    admin_page.goto(f"/admin/billing/apikey/?q={key.prefix}")
    admin_page.check(f"input.action-select[value='{key.pk}']")
    admin_page.select_option("select[name=action]", "revoke_selected")
    admin_page.click("button[name=index]")
    admin_page.get_by_text("Revoked 1 key(s)").wait_for()
    assert admin_page.locator("td.field-status").inner_text() == "revoked"
    assert eventually_refused(gateway.url, raw_key)


def test_it_lists_the_ledger_exports_it_and_adjusts_an_entry(admin_page, gateway, fake_v1, tmp_path):
    tenant = make_tenant()
    key, raw_key = make_key(tenant)
    route = make_route(fake_v1, input_price="0.15", output_price="0.60")
    wait_until_served(gateway.url, raw_key, route.model.name)
    request_id = chat(gateway.url, raw_key, route.model.name).headers["x-request-id"]
    served = ledger_row(request_id)
    now = timezone.now()  # the list shows the last 24 hours unless asked for a range
    for cost in ("0.0012500000", "0.0000000001"):
        make_entry(tenant, key, cost_usd=Decimal(cost), public_model=route.model.name, created_at=now)
    make_entry(tenant, key, status="error", http_status=502, error_type="upstream_error", cost_usd=Decimal(0),
               created_at=now)
    rebuild_rollups()  # the list's totals are the rollups'

    admin_page.goto(f"/admin/billing/ledgerentry/?tenant__id__exact={tenant.pk}")
    rows = LedgerEntry.objects.filter(tenant=tenant)  # the gateway's own rows too (its /v1/models calls)
    total = sum(row.cost_usd for row in rows)
    assert admin_page.locator("#filtered-cost strong").inner_text() == f"{total:f} USD"
    assert admin_page.locator("#result_list tbody tr").count() == rows.count() >= 4
    admin_page.screenshot(path="/tmp/admin-ledger.png", full_page=True)

    with admin_page.expect_download() as download:
        admin_page.click("#export-matching")
    exported = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(exported) == rows.count()
    assert {row["request_id"]: row["cost_usd"] for row in exported}[request_id] == f"{served.cost_usd:f}"

    admin_page.goto(f"/admin/billing/ledgerentry/{served.pk}/change/")
    admin_page.click("#add-adjustment")
    admin_page.fill("#id_amount_usd", "-0.0000010000")
    admin_page.fill("#id_note", "goodwill credit")
    admin_page.click("input[type=submit][value='Record adjustment']")
    admin_page.get_by_text("Recorded adjustment").wait_for()
    adjustment = LedgerEntry.objects.get(adjusts=served)
    assert adjustment.cost_usd == Decimal("-0.000001")
    assert admin_page.locator(".field-net_cost .readonly").inner_text() == f"{served.cost_usd - Decimal('0.000001'):f}"
    assert LedgerEntry.objects.get(pk=served.pk).cost_usd == served.cost_usd


def chat(gateway_url: str, raw_key: str, model: str) -> httpx.Response:
    return httpx.post(f"{gateway_url}/v1/chat/completions", headers={"Authorization": f"Bearer {raw_key}"},
                      json={"model": model, "messages": [{"role": "user", "content": "hello from admin tests"}]},
                      timeout=10)


def eventually_refused(gateway_url: str, raw_key: str, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(f"{gateway_url}/v1/models", headers={"Authorization": f"Bearer {raw_key}"}).status_code == 401:
            return True
        time.sleep(0.1)
    return False


