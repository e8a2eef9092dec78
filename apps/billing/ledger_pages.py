"""Reading a big ledger a page at a time: bounded time ranges, keyset cursors, totals from the rollups.

Nothing here counts or sums ledger rows, and nothing skips rows with OFFSET: at ten million rows
either costs a scan of everything before the page. A page is the next ``size`` rows after a cursor,
(created_at, id), in the order of the (created_at) index, inside a time range of at most
``MAX_RANGE``; its totals are the hourly and daily rollups of the same range, which is why a range
starts and ends on whole hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.db.models import Q, QuerySet, Sum

from apps.billing.models import DailyRollup, HourlyRollup, LedgerEntry

DEFAULT_RANGE = timedelta(hours=24)
MAX_RANGE = timedelta(days=31)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
Direction = Literal["older", "newer"]


@dataclass(frozen=True)
class TimeRange:
    start: datetime  # inclusive, on a whole hour (UTC)
    end: datetime | None  # exclusive, on a whole hour; None: up to now (and whatever comes next)
    clamped: bool = False  # the asked range was longer than MAX_RANGE and was cut at its end

    def label(self) -> str:
        end = "now" if self.end is None else f"{self.end:%Y-%m-%d %H:%M}"
        return f"{self.start:%Y-%m-%d %H:%M} to {end} UTC"


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def parse_moment(text: str, *, end: bool) -> datetime:
    """``2026-11-01`` (a whole UTC day: an end includes it) or an ISO date and time (UTC unless it says)."""
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC) + (DAY if end else timedelta(0))
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def time_range(since: str | None, until: str | None, *, now: datetime) -> TimeRange:
    """The range a page covers, whole hours outward; ValueError on text that is not a date or time."""
    end = ceil_hour(parse_moment(until, end=True)) if until else None
    start = floor_hour(parse_moment(since, end=False)) if since else floor_hour((end or now) - DEFAULT_RANGE)
    if end is not None and end <= start:
        raise ValueError("the range ends before it starts")
    if (end or floor_hour(now)) - start > MAX_RANGE:
        return TimeRange(start=start, end=start + MAX_RANGE, clamped=True)
    return TimeRange(start=start, end=end)


def in_range(rows: QuerySet[LedgerEntry], span: TimeRange) -> QuerySet[LedgerEntry]:
    rows = rows.filter(created_at__gte=span.start)
    return rows if span.end is None else rows.filter(created_at__lt=span.end)


# --- cursors ----------------------------------------------------------------------------------------

def encode_cursor(entry: LedgerEntry) -> str:
    """``<microseconds since 1970>.<id>``: exact, and free of characters a URL would have to escape."""
    return f"{(entry.created_at - EPOCH) // timedelta(microseconds=1)}.{entry.pk}"


def decode_cursor(text: str) -> tuple[datetime, int]:
    micros, _, pk = text.partition(".")
    return EPOCH + timedelta(microseconds=int(micros)), int(pk)


@dataclass(frozen=True)
class Page:
    rows: list[LedgerEntry]
    older: str | None  # cursor of the next page back in time, if there is one
    newer: str | None  # cursor of the page before this one, if there is one


def ledger_page(rows: QuerySet[LedgerEntry], *, size: int, cursor: str | None, direction: Direction) -> Page:
    """``size`` rows newest first, past ``cursor`` in ``direction``; one query of ``size + 1`` rows.

    Going newer reads ascending from the cursor and turns the rows round, so both directions use the
    index the same way and a page never depends on how many rows came before it.
    """
    newest_first = direction == "older"
    ordered = rows.order_by(*(("-created_at", "-pk") if newest_first else ("created_at", "pk")))
    if cursor is not None:
        created_at, pk = decode_cursor(cursor)
        # The plain bound lets the planner start the index scan at the cursor; the OR breaks ties by id.
        if newest_first:
            ordered = ordered.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk),
                                     created_at__lte=created_at)
        else:
            ordered = ordered.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk),
                                     created_at__gte=created_at)
    found = list(ordered[:size + 1])
    more, found = len(found) > size, found[:size]
    if not newest_first:
        found.reverse()
    if not found:
        return Page([], None, None)
    past_newest = more if not newest_first else cursor is not None
    past_oldest = more if newest_first else cursor is not None
    return Page(found, encode_cursor(found[-1]) if past_oldest else None,
                encode_cursor(found[0]) if past_newest else None)


# --- totals -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Totals:
    requests: int
    cost_usd: Decimal  # request rows
    adjustment_usd: Decimal
    cost_avoided_usd: Decimal

    @property
    def spend_usd(self) -> Decimal:
        return self.cost_usd + self.adjustment_usd


def rollup_totals(span: TimeRange, *, now: datetime, **dimensions: Any) -> Totals:
    """The range's sums from the rollups: whole UTC days from the daily table, the hours at either edge
    from the hourly one (a 31-day range reads ~31 daily and <48 hourly buckets per dimension row)."""
    end = span.end or ceil_hour(now)
    first_day = span.start + (-(span.start - EPOCH) % DAY)
    last_day = end - ((end - EPOCH) % DAY)
    parts: list[QuerySet[Any]] = []
    if first_day < last_day:
        parts.append(DailyRollup.objects.filter(bucket__gte=first_day, bucket__lt=last_day, **dimensions))
        parts += [HourlyRollup.objects.filter(bucket__gte=span.start, bucket__lt=first_day, **dimensions),
                  HourlyRollup.objects.filter(bucket__gte=last_day, bucket__lt=end, **dimensions)]
    else:
        parts.append(HourlyRollup.objects.filter(bucket__gte=span.start, bucket__lt=end, **dimensions))
    sums = [part.aggregate(
        ok=Sum("requests_ok"), error=Sum("requests_error"), cancelled=Sum("requests_cancelled"),
        cost=Sum("cost_usd"), adjusted=Sum("adjustment_usd"), avoided=Sum("cost_avoided_usd"),
    ) for part in parts]

    def total(name: str) -> Any:
        return sum((row[name] or 0 for row in sums), Decimal(0) if name in {"cost", "adjusted", "avoided"} else 0)

    return Totals(requests=total("ok") + total("error") + total("cancelled"), cost_usd=total("cost"),
                  adjustment_usd=total("adjusted"), cost_avoided_usd=total("avoided"))
