"""Every rollup rebuilt from the ledger, for tests (and bench data) whose rows were not written through the
ledger writer (apps.billing.ledger_write), which fills the rollups itself."""

from __future__ import annotations

import time
from datetime import UTC, timedelta

from django.db.models import Max, Min

from apps.billing.models import DailyRollup, HourlyRollup, LedgerEntry
from apps.billing.rollup_checks import rebuild_rollups as rebuild


def rebuild_rollups() -> list[tuple[str, int, float]]:
    """Empty both rollup tables and sum them again from the whole ledger; (table, rows, seconds) of each."""
    started = time.monotonic()
    HourlyRollup.objects.all().delete()
    DailyRollup.objects.all().delete()
    span = LedgerEntry.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    if span["first"] is None:
        return [("billing_hourlyrollup", 0, 0.0), ("billing_dailyrollup", 0, 0.0)]
    start = span["first"].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = span["last"].astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hourly, daily = rebuild(start=start, end=end)
    seconds = time.monotonic() - started
    return [("billing_hourlyrollup", hourly, seconds), ("billing_dailyrollup", daily, seconds)]
