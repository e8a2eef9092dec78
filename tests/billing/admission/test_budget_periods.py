"""Budget periods: calendar days, ISO weeks and months in the tenant's time zone, across midnights and DST changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.billing.admission import AdmissionRefused, Ticket
from apps.billing.admission.periods import PeriodCache, period_of
from apps.billing.limits import Budget
from tests.billing.admission.helpers import Clock, demand, engine, outcome, subject

BERLIN = "Europe/Berlin"
MS = timedelta(milliseconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def key_at(period: str, moment: datetime, timezone: str = BERLIN) -> str:
    return period_of(Budget(Decimal(1), period, timezone), moment).key


def bounds(period: str, moment: datetime, timezone: str = BERLIN) -> tuple[datetime | None, datetime | None]:
    found = period_of(Budget(Decimal(1), period, timezone), moment)
    return found.start, found.end


def test_it_starts_a_day_at_local_midnight_not_at_utc_midnight():
    midnight = utc(2026, 12, 6, 23)  # 00:00 on 7 December in Berlin (CET, +1)
    assert key_at("day", midnight - MS) == "d2026-12-06"
    assert key_at("day", midnight) == "d2026-12-07"
    assert key_at("day", midnight, "UTC") == "d2026-12-06"
    assert bounds("day", midnight) == (midnight, utc(2026, 12, 7, 23))


def test_it_makes_the_day_clocks_go_forward_23_hours_long_and_the_day_they_go_back_25():
    spring_start, spring_end = bounds("day", utc(2026, 3, 29, 12))
    autumn_start, autumn_end = bounds("day", utc(2026, 10, 25, 12))
    assert (spring_start, spring_end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert (autumn_start, autumn_end) == (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    assert key_at("day", utc(2026, 3, 29, 21, 59, 59)) == "d2026-03-29"
    assert key_at("day", utc(2026, 3, 29, 22)) == "d2026-03-30"  # midnight in summer time (+2)


def test_it_starts_an_iso_week_on_monday_at_local_midnight():
    monday = utc(2026, 12, 6, 23)  # Monday 7 December, 00:00 in Berlin
    assert key_at("week", monday - MS) == "w2026-W49"
    assert key_at("week", monday) == "w2026-W50"
    assert bounds("week", monday + timedelta(days=3)) == (monday, monday + timedelta(days=7))


def test_it_names_weeks_by_iso_year_across_new_year():
    assert key_at("week", utc(2027, 1, 3, 12)) == "w2026-W53"  # a Sunday of 2027 still in 2026's last week
    assert key_at("week", utc(2027, 1, 3, 23)) == "w2027-W01"  # Monday 4 January, 00:00 in Berlin


def test_it_starts_a_month_at_local_midnight_of_its_first_day_whatever_the_offset():
    month_end = utc(2026, 10, 31, 23)  # 1 November, 00:00 CET
    assert key_at("month", month_end - MS) == "m2026-10"
    assert key_at("month", month_end) == "m2026-11"
    # October began in summer time and ends in winter time.
    assert bounds("month", utc(2026, 10, 15)) == (utc(2026, 9, 30, 22), month_end)
    assert key_at("month", utc(2026, 12, 31, 23)) == "m2027-01"


def test_it_keeps_one_total_period_forever():
    assert key_at("total", utc(2020, 1, 1)) == key_at("total", utc(2030, 6, 1)) == "total"
    assert bounds("total", utc(2026, 1, 1)) == (None, None)


def test_it_moves_to_the_next_period_exactly_at_the_boundary_while_cached():
    cache, budget = PeriodCache(), Budget(Decimal(1), "day", BERLIN)
    midnight_ms = int(utc(2026, 3, 28, 23).timestamp() * 1000)  # the day clocks go forward
    assert cache.get(budget, midnight_ms - 1).key == "d2026-03-28"
    assert cache.get(budget, midnight_ms).key == "d2026-03-29"
    assert cache.get(budget, midnight_ms - 1).key == "d2026-03-28"


@pytest.mark.usefixtures("transactional_db")
def test_it_admits_again_when_a_spent_daily_budget_reaches_the_tenants_midnight(backend: str, clock: Clock):
    daily = subject(budget="1.00", period="day", timezone=BERLIN)
    service = engine(clock)
    midnight = utc(2026, 12, 6, 23)

    async def scenario() -> list[Ticket | AdmissionRefused]:
        clock.set(midnight - timedelta(seconds=10))
        spent = await service.admit(demand(daily, cost="1.00"))
        await service.settle(spent, tokens=0, cost_usd=Decimal("1.00"))
        clock.set(midnight - MS)
        before = await outcome(service, demand(daily, cost="0.01"))
        clock.set(midnight)
        return [before, await outcome(service, demand(daily, cost="0.01"))]

    before, after = asyncio.run(scenario())
    assert isinstance(before, AdmissionRefused) and before.reason == "budget"
    assert isinstance(after, Ticket) and after.budget_remaining_usd == Decimal("0.99")
