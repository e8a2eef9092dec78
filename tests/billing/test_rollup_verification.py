"""The scheduled verification: recent rollups checked against the ledger, drift logged and counted."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.billing.models import HourlyRollup
from apps.billing.rollup_checks import rebuild_rollups
from apps.billing.tasks import verify_recent_rollups
from tests.admin.conftest import make_entry
from tests.factories import make_tenant
from tests.harness.celery_worker import CeleryWorker
from tests.harness.waiting import wait_until

LOGGER = "apps.billing.rollup_verification"


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def tenant_with_recent_rows():
    """Two rows in the previous hour (inside the verified window), and every rollup of the window rebuilt to
    agree with the ledger (rows other tests committed included)."""
    tenant = make_tenant()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    make_entry(tenant, created_at=hour - timedelta(minutes=30), cost_usd=Decimal("0.0300000000"))
    make_entry(tenant, created_at=hour - timedelta(minutes=29), cost_usd=Decimal("0.0000000002"))
    rebuild_rollups(start=hour - timedelta(hours=3), end=hour + timedelta(hours=1))
    return tenant


@pytest.mark.django_db
def test_it_is_silent_when_the_rollups_agree_with_the_ledger(tenant_with_recent_rows, caplog):
    drifts_before = metric("edge_rollup_drift_total")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        summary = verify_recent_rollups.apply().get()

    assert summary == {"drifts": 0}
    assert [record for record in caplog.records if record.name == LOGGER] == []
    assert metric("edge_rollup_drift_total") == drifts_before and metric("llm_rollup_drift_usd") == 0


@pytest.mark.django_db
def test_it_logs_and_counts_a_tampered_rollup(tenant_with_recent_rows, caplog):
    tenant = tenant_with_recent_rows
    HourlyRollup.objects.filter(tenant_id=tenant.pk).update(cost_usd=F("cost_usd") + Decimal("0.5"))
    drifts_before = metric("edge_rollup_drift_total")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        summary = verify_recent_rollups.apply().get()

    warnings = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert summary == {"drifts": 1}
    assert len(warnings) == 1 and f"rollup drift: tenant {tenant.pk}, hour " in warnings[0]
    assert "cost_usd 0.0300000002 != 0.5300000002" in warnings[0]
    assert metric("edge_rollup_drift_total") == drifts_before + 1
    assert metric("llm_rollup_drift_usd") == 0.5


def test_a_worker_logs_the_drift_it_finds(live_db, tmp_path):
    tenant = make_tenant()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    make_entry(tenant, created_at=hour - timedelta(minutes=30), cost_usd=Decimal("0.0300000000"))
    HourlyRollup.objects.filter(tenant_id=tenant.pk).update(requests_ok=F("requests_ok") + 2)

    with CeleryWorker(log_path=tmp_path / "worker.log", env={}) as worker:
        verify_recent_rollups.delay()
        wait_until(lambda: f"rollup drift: tenant {tenant.pk}, hour " in worker.log(), timeout_s=30,
                   what=f"the worker's drift line:\n{worker.log()}")

    assert "requests_ok 1 != 3" in worker.log() and '"level":"warning"' in worker.log()
