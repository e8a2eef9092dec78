"""Budget periods: calendar days, ISO weeks (from Monday), months, or all time, in a subject's time zone.

A period begins at local midnight of its first day, whatever the offset that day (so a day is 23 or
25 hours long across a DST change), and its key, which names its counters in Redis, is derived from
the local date alone, so every process agrees on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apps.billing.limits import Budget

_EPOCH_MS_MIN = -(2**62)
_EPOCH_MS_MAX = 2**62


@dataclass(frozen=True, slots=True)
class Period:
    kind: str  # day, week, month, total
    key: str  # d2026-12-06, w2026-W49, m2026-12, total
    start: datetime | None  # aware, the first instant; None for total
    end: datetime | None  # aware, the next period's first instant; None for total
    start_ms: int
    end_ms: int

    def holds(self, now_ms: int) -> bool:
        return self.start_ms <= now_ms < self.end_ms


TOTAL = Period("total", "total", None, None, _EPOCH_MS_MIN, _EPOCH_MS_MAX)


def period_of(budget: Budget, now: datetime) -> Period:
    """The period of ``budget`` that holds the instant ``now`` (aware)."""
    if budget.period == "total":
        return TOTAL
    zone = ZoneInfo(budget.timezone)  # ZoneInfo keeps one instance per name
    day = now.astimezone(zone).date()
    if budget.period == "day":
        return _period("day", f"d{day.isoformat()}", day, day + timedelta(days=1), zone)
    if budget.period == "week":
        year, week, weekday = day.isocalendar()
        monday = day - timedelta(days=weekday - 1)
        return _period("week", f"w{year}-W{week:02d}", monday, monday + timedelta(days=7), zone)
    if budget.period == "month":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return _period("month", f"m{first:%Y-%m}", first, following, zone)
    raise ValueError(f"unknown budget period {budget.period!r}")


def _period(kind: str, key: str, first: date, following: date, zone: ZoneInfo) -> Period:
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(following, time(), zone)
    return Period(kind, key, start, end, _ms(start), _ms(end))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def instant(now_ms: int) -> datetime:
    """Milliseconds since the epoch as an aware datetime, exactly (no float in between)."""
    return datetime.fromtimestamp(now_ms // 1000, UTC) + timedelta(milliseconds=now_ms % 1000)


class PeriodCache:
    """The current period per (time zone, period kind), computed once per period rather than per request."""

    def __init__(self) -> None:
        self._current: dict[tuple[str, str], Period] = {}

    def get(self, budget: Budget, now_ms: int) -> Period:
        cached = self._current.get((budget.timezone, budget.period))
        if cached is not None and cached.holds(now_ms):
            return cached
        period = period_of(budget, instant(now_ms))
        self._current[(budget.timezone, budget.period)] = period
        return period
