"""The periodic work, defined once: what runs, how often. Celery beat and the in-process runner
(edge_project.periodic, for `make run`) both read ``CELERY_BEAT_SCHEDULE``, which settings build here.

``EDGE_SCHEDULE`` overrides an entry's interval (``budget-alerts=30,verify-rollups=0``; 0 turns it
off); retention is scheduled only when ``EDGE_RETENTION_MONTHS`` keeps a number of months.
"""

from __future__ import annotations

from typing import Any

# name → (task, seconds between runs)
DEFAULT_SCHEDULE: dict[str, tuple[str, float]] = {
    "budget-alerts": ("apps.billing.tasks.send_budget_alerts", 60.0),
    "verify-rollups": ("apps.billing.tasks.verify_recent_rollups", 15 * 60.0),
    "ledger-retention": ("apps.billing.tasks.apply_ledger_retention", 24 * 60 * 60.0),
}


class ScheduleError(ValueError):
    """EDGE_SCHEDULE names an entry that does not exist or gives a bad interval."""


def parse_overrides(text: str) -> dict[str, float]:
    overrides: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, seconds = (part.strip() for part in item.partition("="))
        if name not in DEFAULT_SCHEDULE:
            raise ScheduleError(f"EDGE_SCHEDULE: no scheduled task {name!r} (known: {', '.join(DEFAULT_SCHEDULE)})")
        try:
            overrides[name] = float(seconds)
        except ValueError:
            raise ScheduleError(f"EDGE_SCHEDULE: {item!r} is not name=seconds") from None
        if overrides[name] < 0:
            raise ScheduleError(f"EDGE_SCHEDULE: {item!r} is negative")
    return overrides


def beat_schedule(overrides: str, *, retention_months: int) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule``: every entry with an interval above 0."""
    intervals = {name: seconds for name, (_, seconds) in DEFAULT_SCHEDULE.items()}
    if retention_months <= 0:
        intervals["ledger-retention"] = 0
    intervals.update(parse_overrides(overrides))
    return {
        name: {"task": DEFAULT_SCHEDULE[name][0], "schedule": seconds, "options": {"expires": seconds}}
        for name, seconds in intervals.items() if seconds > 0
    }
