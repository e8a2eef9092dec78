"""How far a filtered ledger page has to look, read from the daily rollups.

A page is the next rows past a cursor in (created_at, id) order, found by walking the created_at
index and skipping the rows the filters reject. With a filter that matches few rows (a model that
served 1 % of requests, one that served none), that walk crosses millions of rows. The daily rollups
count, per UTC day, the rows of each tenant, key, model and provider by status and kind, so they say
on which day the walk will have found a page: the page's query is bounded there, or skipped when the
rollups count no matching row at all.

A bound is given only when every active filter is one the rollups count exactly (tenant, key, model,
provider, status, kind); with any other (cache status, a search) the walk is unbounded. The day the
walk starts on is never counted (its rows on the far side of the cursor are in its count too), so a
bound can only be generous, never cut a page short; should the rollups ever count more than the
ledger holds (they drifted), the page is read again unbounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from django.db.models import F, Sum

from apps.billing.models import DailyRollup

DAY = timedelta(days=1)
# The four kinds of row the rollups count, and the filters' values that select them.
CATEGORIES = {"requests_ok": ("request", "ok"), "requests_error": ("request", "error"),
              "requests_cancelled": ("request", "cancelled"), "adjustments": ("adjustment", "ok")}


@dataclass(frozen=True)
class Bound:
    """Where the page's rows lie: from ``start`` (older pages) or before ``end`` (newer pages)."""

    start: datetime | None = None
    end: datetime | None = None
    empty: bool = False  # the rollups count no matching row on the page's side of the cursor
    counted: bool = False  # the bound holds a whole page by the rollups' count (not just "all there is")


def counter_columns(*, status: str | None, kind: str | None) -> list[str]:
    """The rollup columns that together count the rows a status and kind filter select."""
    return [column for column, (row_kind, row_status) in CATEGORIES.items()
            if status in (None, row_status) and kind in (None, row_kind)]


def page_bound(*, dimensions: dict[str, Any], columns: list[str], start: datetime, end: datetime, edge: datetime,
               direction: Literal["older", "newer"], size: int) -> Bound:
    """The bound of a page of ``size`` rows past ``edge`` (the cursor's time, or the range's end for the
    first page) within ``[start, end)``."""
    if not columns:
        return Bound(empty=True)
    edge_day = _day(edge)
    days = DailyRollup.objects.filter(bucket__gte=_day(start), bucket__lt=end, **dimensions)
    days = days.filter(bucket__lte=edge_day) if direction == "older" else days.filter(bucket__gte=edge_day)
    counted = (days.order_by().values("bucket").annotate(rows=Sum(sum((F(name) for name in columns[1:]),
                                                                      F(columns[0]))))
               .order_by("-bucket" if direction == "older" else "bucket").values_list("bucket", "rows"))
    total, last_day_with_rows = 0, None
    for bucket, rows in counted:
        if not rows:
            continue
        last_day_with_rows = bucket
        if bucket == edge_day:
            continue  # partly on the other side of the cursor: its count proves nothing
        total += rows
        if total > size:
            return _bound(bucket, direction, counted=True)
    if last_day_with_rows is None:
        return Bound(empty=True)
    return _bound(last_day_with_rows, direction, counted=False)


def _bound(day: datetime, direction: Literal["older", "newer"], *, counted: bool) -> Bound:
    return Bound(start=day, counted=counted) if direction == "older" else Bound(end=day + DAY, counted=counted)


def _day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
