"""The schedule of background work, defined once and overridable, and the checks of its settings."""

from __future__ import annotations

import pytest

from apps.billing.checks import check_background_settings
from edge_project.schedule import ScheduleError, beat_schedule


def intervals(schedule: dict[str, dict[str, object]]) -> dict[str, object]:
    return {name: entry["schedule"] for name, entry in schedule.items()}


def test_it_schedules_alerts_every_minute_and_verification_every_quarter_hour_and_no_retention_by_default():
    assert intervals(beat_schedule("", retention_months=0)) == {"budget-alerts": 60.0, "verify-rollups": 900.0}


def test_retention_is_scheduled_daily_once_it_keeps_a_number_of_months():
    schedule = beat_schedule("", retention_months=13)

    assert schedule["ledger-retention"]["task"] == "apps.billing.tasks.apply_ledger_retention"
    assert schedule["ledger-retention"]["schedule"] == 86400.0


def test_a_setting_changes_an_interval_or_turns_an_entry_off():
    assert intervals(beat_schedule("budget-alerts=15, verify-rollups=0", retention_months=0)) == {
        "budget-alerts": 15.0}


@pytest.mark.parametrize("text", ["alerts=60", "budget-alerts", "budget-alerts=soon", "budget-alerts=-1"])
def test_a_malformed_override_is_refused_at_start(text):
    with pytest.raises(ScheduleError, match="EDGE_SCHEDULE"):
        beat_schedule(text, retention_months=0)


def test_the_checks_name_each_bad_setting(settings):
    settings.EDGE_BUDGET_ALERT_THRESHOLDS = ["50", "eighty", "0"]
    settings.EDGE_BUDGET_ALERT_WEBHOOK_URL = "ftp://example.com/hook"
    settings.EDGE_RETENTION_MONTHS = -1
    settings.EDGE_BUDGET_ALERT_ATTEMPTS = 0

    ids = sorted(str(message.id) for message in check_background_settings())

    assert ids == ["edge.E130", "edge.E130", "edge.E131", "edge.E133", "edge.E134", "edge.W130"]
