"""A report: rollups in a local date range, summed per period (day, week, month) and per dimension.

The range is a span of local dates in one time zone (a tenant's own, or any chosen one across
tenants). UTC reports read the daily rollups; other zones read the hourly ones and put each hour in
the local period its start falls in. That is exact for every zone whose offset is a whole number of
hours; in a zone such as Asia/Kolkata (+05:30) the hour that straddles local midnight counts wholly
to the day it starts in (the rollups' grain is the hour; nothing finer is kept).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.db.models import DateField, QuerySet
from django.db.models.functions import Trunc

from apps.billing.models import ApiKey, DailyRollup, HourlyRollup, Tenant
from apps.billing.reports.measures import Measures, sums, total

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
# What a report may be grouped by, and the rollup column each reads.
GROUPS = {"model": "public_model", "provider": "provider", "key": "api_key_id", "endpoint": "endpoint",
          "tenant": "tenant_id"}
TOP_KEYS = 10
NONE_LABEL = "(none)"


@dataclass(frozen=True, slots=True)
class ReportQuery:
    start: date  # first local day, included
    end: date  # last local day, included
    zone: ZoneInfo
    period: Period = "day"
    group: str = "model"
    tenant_id: int | None = None  # None: every tenant

    def window(self) -> tuple[datetime, datetime]:
        """The UTC instants of the range: local midnight of ``start`` up to local midnight after ``end``."""
        return _midnight(self.start, self.zone), _midnight(self.end + timedelta(days=1), self.zone)

    def periods(self) -> list[date]:
        """The first day of every period that meets the range, in order (empty ones too)."""
        found, day = [], period_start(self.start, self.period)
        while day <= self.end:
            found.append(day)
            day = next_period(day, self.period)
        return found


@dataclass(slots=True)
class ReportRow:
    period: date
    key: Any  # the dimension's value (a name, or an id for keys and tenants)
    label: str
    measures: Measures


@dataclass(slots=True)
class Report:
    query: ReportQuery
    rows: list[ReportRow]  # per period and group, periods in order, bigger spend first within one
    periods: list[ReportRow] = field(default_factory=list)  # per period: the sums of ``rows``
    top_keys: list[ReportRow] = field(default_factory=list)  # over the whole range, by spend
    total: Measures = field(default_factory=Measures)


def build_report(query: ReportQuery) -> Report:
    rows = _grouped(query, GROUPS[query.group])
    by_period = {day: Measures() for day in query.periods()}
    for row in rows:
        by_period[row.period].add(row.measures)
    return Report(
        query=query, rows=rows, total=total([row.measures for row in rows]),
        periods=[ReportRow(day, day, period_label(day, query.period), measures) for day, measures in by_period.items()],
        top_keys=top_keys(query),
    )


def top_keys(query: ReportQuery) -> list[ReportRow]:
    spend: dict[Any, Measures] = {}
    for row in _grouped(query, "api_key_id"):
        spend.setdefault(row.key, Measures()).add(row.measures)
    labels = _labels("key", set(spend))
    ranked = sorted(spend.items(), key=lambda item: (-item[1].spend_usd, str(item[0])))[:TOP_KEYS]
    return [ReportRow(query.start, key, labels.get(key, NONE_LABEL), measures) for key, measures in ranked]


def rollups(query: ReportQuery) -> QuerySet[Any]:
    """The rollup rows of the range (daily ones when the zone's days are UTC days)."""
    model: type[DailyRollup] | type[HourlyRollup] = DailyRollup if is_utc(query.zone) else HourlyRollup
    start, end = query.window()
    rows: QuerySet[Any] = model.objects.filter(bucket__gte=start, bucket__lt=end)
    return rows.filter(tenant_id=query.tenant_id) if query.tenant_id is not None else rows


def _grouped(query: ReportQuery, column: str) -> list[ReportRow]:
    truncated = Trunc("bucket", query.period, output_field=DateField(), tzinfo=query.zone)
    values = (rollups(query).annotate(period=truncated).values("period", column).annotate(**sums())
              .order_by("period", column))
    rows = [(row["period"], row[column], Measures.from_values(row)) for row in values]
    group = next(name for name, col in GROUPS.items() if col == column)
    labels = _labels(group, {key for _, key, _ in rows})
    found = [ReportRow(_as_date(day), key, labels.get(key, str(key) or NONE_LABEL), m) for day, key, m in rows]
    found.sort(key=lambda row: (row.period, -row.measures.spend_usd, row.label))
    return found


def _labels(group: str, keys: set[Any]) -> dict[Any, str]:
    """Names for ids: a key's prefix (and tenant), a tenant's slug; one query, only for those shown."""
    if group == "key":
        named = ApiKey.objects.filter(pk__in=keys).values_list("pk", "prefix", "name", "tenant__slug")
        return {pk: f"{prefix} {name} ({slug})".replace("  ", " ") for pk, prefix, name, slug in named}
    if group == "tenant":
        return dict(Tenant.objects.filter(pk__in=keys).values_list("pk", "slug"))
    return {"": NONE_LABEL}


def period_start(day: date, period: Period) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks, from Monday (as Django's TruncWeek)
    if period == "month":
        return day.replace(day=1)
    return day


def next_period(day: date, period: Period) -> date:
    if period == "week":
        return day + timedelta(days=7)
    if period == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=1)


def period_label(day: date, period: Period) -> str:
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.strftime("%Y-%m") if period == "month" else day.isoformat()


def days(start: date, end: date) -> Iterator[date]:
    while start <= end:
        yield start
        start += timedelta(days=1)


def is_utc(zone: ZoneInfo) -> bool:
    return zone.key in ("UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu")


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value
