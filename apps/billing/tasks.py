"""Billing's scheduled work (edge_project.schedule): thin tasks, each one service call.

Run by a Celery worker (`celery -A edge_project worker`) on beat's schedule, or, with no broker, in
the gateway process off its event loop (edge_project.periodic). Each is safe to run again or twice
at once; each returns a small summary for the worker's log.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.billing.alerts import send_budget_alerts as send_alerts
from apps.billing.retention import archive_months, cutoff_keeping
from apps.billing.rollup_verification import verify_recent_rollups as verify

logger = logging.getLogger(__name__)


@shared_task(name="apps.billing.tasks.send_budget_alerts", ignore_result=True)
def send_budget_alerts() -> dict[str, int]:
    run = send_alerts()
    return {"recorded": run.recorded, "delivered": run.delivered, "failed": run.failed}


@shared_task(name="apps.billing.tasks.verify_recent_rollups", ignore_result=True)
def verify_recent_rollups() -> dict[str, int]:
    return {"drifts": len(verify())}


@shared_task(name="apps.billing.tasks.apply_ledger_retention", ignore_result=True)
def apply_ledger_retention() -> dict[str, int]:
    """Archive the months past EDGE_RETENTION_MONTHS; nothing while it is 0 (keep everything)."""
    if settings.EDGE_RETENTION_MONTHS <= 0:
        return {"months": 0, "rows": 0}
    before = cutoff_keeping(settings.EDGE_RETENTION_MONTHS, today=timezone.now().date())
    months = archive_months(before=before, directory=settings.EDGE_RETENTION_DIR)
    return {"months": len(months), "rows": sum(month.rows for month in months)}
