"""Retention: `edge_ledger archive` moves whole months to compressed files and deletes exactly them; the
rollups stay, so reports and admin totals still show those months; nothing else may delete ledger rows."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.urls import reverse

from apps.billing import services
from apps.billing.ledger_pages import TimeRange, rollup_totals
from apps.billing.models import LedgerEntry, Tenant
from apps.billing.retention import cutoff_keeping
from apps.billing.tasks import apply_ledger_retention
from tests.admin.conftest import make_entry
from tests.factories import make_tenant
from tests.harness.gateway import ROOT
from tests.harness.rollups import rebuild_rollups

pytestmark = pytest.mark.django_db


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def archived(directory: Path) -> dict[str, list[dict[str, object]]]:
    """File name's month → the rows in it."""
    return {path.name[7:14]: [json.loads(line) for line in gzip.open(path)] for path in sorted(directory.iterdir())}


def ledger_months(tenant: Tenant) -> list[str]:
    return sorted({f"{created:%Y-%m}" for created in
                   LedgerEntry.objects.filter(tenant=tenant).values_list("created_at", flat=True)})


@pytest.mark.django_db(transaction=True)  # committed rows: the archive runs its own REPEATABLE READ transactions
def test_it_archives_and_deletes_exactly_the_months_before_the_cut(tmp_path):
    tenant = make_tenant()
    rows = {day: make_entry(tenant, created_at=at(day), cost_usd=Decimal("0.1234567891"))
            for day in ("2026-07-31T23:59:59", "2026-08-01T00:00", "2026-08-20T10:00", "2026-09-30T23:59:59.999",
                        "2026-10-01T00:00")}
    rebuild_rollups()
    july_to_september = TimeRange(start=at("2026-07-01"), end=at("2026-10-01"))
    before = rollup_totals(july_to_september, now=at("2026-12-01"), tenant_id=tenant.pk)

    out = StringIO()
    call_command("edge_ledger", "archive", "--before", "2026-10", "--dir", str(tmp_path), stdout=out)

    files = archived(tmp_path)
    assert ledger_months(tenant) == ["2026-10"]
    assert sorted(files) == ["2026-07", "2026-08", "2026-09"]
    assert [row["request_id"] for row in files["2026-08"]] == [rows["2026-08-01T00:00"].request_id,
                                                              rows["2026-08-20T10:00"].request_id]
    assert files["2026-09"][0]["cost_usd"] == "0.1234567891" and files["2026-09"][0]["tenant_id"] == tenant.pk
    assert files["2026-09"][0]["cost_avoided_usd"] == "0.0000000000"  # every digit, never "0E-10"
    assert "2026-08: 2 rows archived to" in out.getvalue()
    assert rollup_totals(july_to_september, now=at("2026-12-01"), tenant_id=tenant.pk) == before
    assert before.requests == 4 and before.cost_usd == Decimal("0.4938271564")


def test_reports_still_show_an_archived_months_totals(admin_client, tmp_path):
    tenant = make_tenant()
    make_entry(tenant, created_at=at("2026-08-05T09:30"), cost_usd=Decimal("2.5000000000"))
    make_entry(tenant, created_at=at("2026-08-06T09:30"), cost_usd=Decimal("0.0000000001"))
    rebuild_rollups()

    call_command("edge_ledger", "archive", "--before", "2026-09", "--dir", str(tmp_path), stdout=StringIO())
    page = admin_client.get(reverse("admin:billing_ledgerentry_changelist"),
                            {"since": "2026-08-01", "until": "2026-08-31", "tenant__id__exact": tenant.pk})

    assert page.context["cl"].result_count == 0  # the rows are gone from the ledger...
    assert page.context["filtered_cost"] == "2.5000000001"  # ...their totals are not


def test_a_row_corrected_after_the_cut_stays_with_its_correction(tmp_path):
    tenant = make_tenant()
    corrected = make_entry(tenant, created_at=at("2026-06-10T12:00"))
    plain = make_entry(tenant, created_at=at("2026-06-11T12:00"))
    adjustment = services.record_adjustment(entry=corrected, cost_delta_usd=Decimal("-0.01"), note="refund")

    call_command("edge_ledger", "archive", "--before", "2026-07", "--dir", str(tmp_path), stdout=StringIO())

    assert set(LedgerEntry.objects.filter(tenant=tenant).values_list("request_id", flat=True)) == {
        corrected.request_id, adjustment.request_id}
    assert [row["request_id"] for row in archived(tmp_path)["2026-06"]] == [plain.request_id]


def test_a_dry_run_counts_and_changes_nothing(tmp_path):
    tenant = make_tenant()
    make_entry(tenant, created_at=at("2026-05-10T12:00"))
    out = StringIO()

    call_command("edge_ledger", "archive", "--before", "2026-06", "--dir", str(tmp_path), "--dry-run", stdout=out)

    assert "2026-05: 1 rows would be archived" in out.getvalue()
    assert ledger_months(tenant) == ["2026-05"] and not any(tmp_path.iterdir())


def test_the_ledger_refuses_deletes_outside_retention():
    entry = make_entry(make_tenant())

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()

    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_the_scheduled_retention_keeps_the_configured_months(settings, tmp_path, monkeypatch):
    settings.EDGE_RETENTION_DIR = tmp_path
    tenant = make_tenant()
    make_entry(tenant, created_at=at("2026-03-15T12:00"))
    make_entry(tenant, created_at=at("2026-11-15T12:00"))

    settings.EDGE_RETENTION_MONTHS = 0
    off = apply_ledger_retention.apply().get()
    settings.EDGE_RETENTION_MONTHS = 6
    on = apply_ledger_retention.apply().get()

    assert off == {"months": 0, "rows": 0}
    assert on["rows"] >= 1 and "2026-03" in archived(tmp_path)
    assert ledger_months(tenant) == ["2026-11"]


def test_keeping_n_months_keeps_this_one_and_the_n_minus_one_before():
    assert cutoff_keeping(3, today=date(2026, 12, 6)) == date(2026, 10, 1)
    assert cutoff_keeping(1, today=date(2026, 1, 31)) == date(2026, 1, 1)
    assert cutoff_keeping(14, today=date(2026, 2, 1)) == date(2025, 1, 1)


SQLITE_SCRIPT = """
import django, io, json, sys
django.setup()
from datetime import UTC, datetime
from decimal import Decimal
from django.core.management import call_command
from apps.billing.models import LedgerEntry, Tenant
call_command("migrate", verbosity=0)
tenant = Tenant.objects.create(slug="t", name="T")
for n, month in enumerate((4, 5, 6)):
    LedgerEntry.objects.create(request_id=f"r{n}", tenant=tenant, status="ok", http_status=200,
                               cost_usd=Decimal("0.5"), created_at=datetime(2026, month, 2, tzinfo=UTC))
call_command("edge_ledger", "archive", "--before", "2026-06", "--dir", sys.argv[1], stdout=io.StringIO())
print(json.dumps(sorted(LedgerEntry.objects.values_list("request_id", flat=True))))
"""


@pytest.mark.django_db(databases=[])  # its own database: a SQLite file in a child process
def test_retention_works_on_sqlite_too(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'edge.sqlite3'}", "DEBUG": "true",
           "DJANGO_SETTINGS_MODULE": "edge_project.settings.base"}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "-c", SQLITE_SCRIPT, str(tmp_path / "archive")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["r2"]
    assert sorted(archived(tmp_path / "archive")) == ["2026-04", "2026-05"]
