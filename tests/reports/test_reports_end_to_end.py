"""Real requests through a real gateway, then every report of them: the OpenAI-shaped API, the admin page,
its CSV and the FOCUS file all equal the ledger's sum (the rollups are filled with each ledger row)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client
from django.urls import reverse

from apps.billing.models import LedgerEntry
from apps.billing.services import record_adjustment
from tests.factories import unique
from tests.harness.served import serve, wait_for_rows
from tests.reports.conftest import make_reader
from tests.reports.html_tables import page_tables

pytestmark = pytest.mark.usefixtures("live_db")


def test_every_report_of_real_requests_equals_the_ledger(gateway, fake, fake_v1):
    served = serve(gateway, fake_v1, cached_price="0.075", input_price="0.123457", output_price="0.765432")
    fake.set_rule(served.upstream_model, cached_tokens=4)
    _, reader = make_reader(served.tenant)
    request_ids = [served.post(served.chat_body(unique("hello") * (n + 1))).headers["x-request-id"]
                   for n in range(6)]
    rows = wait_for_rows(request_ids)
    record_adjustment(entry=rows[request_ids[0]], cost_delta_usd=Decimal("-0.0000001234"), note="goodwill")
    ledger = LedgerEntry.objects.filter(tenant=served.tenant).aggregate(total=Sum("cost_usd"))["total"]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    api = httpx.get(f"{gateway.url}/v1/organization/costs", headers={"Authorization": f"Bearer {reader}"},
                    params={"start_time": int(today.timestamp()), "group_by[]": "line_item"}, timeout=10)
    amounts = [r["amount"]["value"] for r in json.loads(api.text, parse_float=Decimal)["data"][0]["results"]]

    client = Client()
    client.force_login(User.objects.create_superuser(unique("finance"), password="pw-finance-1"))
    report_url = reverse("admin:billing_tenant_report", args=[served.tenant.pk])
    span = {"start": f"{today:%Y-%m-%d}", "end": f"{today:%Y-%m-%d}"}
    tables = page_tables(client.get(report_url, span).content.decode())
    spend = tables["rows"][0].index("spend (USD)")
    page_total = Decimal(tables["rows"][-1][spend])
    csv_rows = list(csv.reader(io.StringIO(client.get(report_url, {**span, "export": "rows"}).content.decode())))

    focus = io.StringIO()
    call_command("edge_focus", "--tenant", served.tenant.slug, "--month", f"{today:%Y-%m}", stdout=focus)
    focus_rows = list(csv.DictReader(io.StringIO(focus.getvalue())))

    assert ledger == sum(amounts) == page_total == Decimal(csv_rows[-1][spend])
    assert sum(Decimal(row["BilledCost"]) for row in focus_rows) == ledger
    version = served.route.deployment.price_versions.get()
    details = json.loads(next(r for r in focus_rows if r["SkuMeter"] == "Cached Input Tokens")["SkuPriceDetails"])
    assert (details["PriceVersionId"], details["UnitPriceUSDPer1000000Tokens"]) == (version.pk, "0.0750000000")
