"""Rollups checked against the ledger, and rebuilt from it.

``ledger_sums()`` and ``rollup_sums()`` give the same measures per tenant and hour (or day), one from
the ledger's rows, one from the rollups; ``verify_rollups()`` lists where they differ (exact Decimal
comparison); ``rebuild_rollups()`` recomputes a period's rollup rows from the ledger. On Postgres the
ledger's sums are SQL (apps.billing.rollup_sql); on SQLite, Python over the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum

from apps.billing.models import DailyRollup, HourlyRollup, LedgerEntry, Rollup
from apps.billing.rollup_sql import DIMENSION_SQL, MEASURE_SQL, bucket_sql
from apps.billing.rollups import DAY, HOUR, MEASURES, SOURCE_COLUMNS, day_of, hour_of, summed, upsert

Sums = dict[tuple[int, datetime], dict[str, Any]]  # (tenant id, bucket) → measure → value
READ_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Drift:
    """A tenant's hour (or day) whose rollups do not sum to its ledger rows."""

    tenant_id: int
    bucket: datetime
    period: str  # "hour" or "day"
    differences: dict[str, tuple[Any, Any]]  # measure → (ledger's sum, rollups' sum)


def verify_rollups(*, start: datetime, end: datetime, period: str = "hour") -> list[Drift]:
    """Every tenant and hour (or day) of ``[start, end)``, widened to whole buckets, where the rollups'
    sums differ from the ledger's, by tenant then bucket. Empty when they agree."""
    start, end = _widened(start, end, period)
    ledger, rollups = ledger_sums(start=start, end=end, period=period), rollup_sums(start=start, end=end, period=period)
    drifts = []
    for tenant_id, bucket in sorted(ledger.keys() | rollups.keys()):
        expected, found = ledger.get((tenant_id, bucket), {}), rollups.get((tenant_id, bucket), {})
        differences = {
            name: (expected.get(name, 0), found.get(name, 0)) for name in MEASURES
            if expected.get(name, 0) != found.get(name, 0)
        }
        if differences:
            drifts.append(Drift(tenant_id=tenant_id, bucket=bucket, period=period, differences=differences))
    return drifts


def ledger_sums(*, start: datetime, end: datetime, period: str = "hour") -> Sums:
    """The ledger's rows summed per tenant and hour (or day), as rollups sum them, over the buckets that
    ``[start, end)`` touches (whole)."""
    start, end = _widened(start, end, period)
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT l.tenant_id, {bucket_sql(period)}, {MEASURE_SQL} FROM {LedgerEntry._meta.db_table} l "
            "WHERE l.created_at >= %s AND l.created_at < %s GROUP BY 1, 2"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [start, end])
            return {(row[0], row[1].astimezone(UTC)): dict(zip(MEASURES, row[2:], strict=True)) for row in cursor}
    hourly, daily = summed(_ledger_rows(start, end))
    sums: Sums = {}
    for key, values in (hourly if period == "hour" else daily).items():
        total = sums.setdefault((key[1], key[0]), dict.fromkeys(MEASURES, 0))
        for name, value in zip(MEASURES, values, strict=True):
            total[name] += value
    return sums


def rollup_sums(*, start: datetime, end: datetime, period: str = "hour") -> Sums:
    """The hourly (or daily) rollups summed per tenant and bucket, over the buckets ``[start, end)`` touches."""
    start, end = _widened(start, end, period)
    model = HourlyRollup if period == "hour" else DailyRollup
    rows = (
        model.objects.filter(bucket__gte=start, bucket__lt=end).order_by().values("tenant_id", "bucket")
        .annotate(**{f"sum_{name}": Sum(name) for name in MEASURES})
    )
    sums: Sums = {}
    for row in rows:
        values: dict[str, Any] = dict(row)
        sums[values["tenant_id"], values["bucket"].astimezone(UTC)] = {name: values[f"sum_{name}"] for name in MEASURES}
    return sums


def rebuild_rollups(*, start: datetime, end: datetime) -> tuple[int, int]:
    """Recompute the hourly rollups of ``[start, end)`` (whole hours) and the daily rollups of every day it
    touches (whole days) from the ledger, in one transaction; returns the (hourly, daily) rows written.

    The ledger is locked against inserts first (on Postgres; SQLite has one writer at a time), so no
    row commits between the deletion and the sums and the rollups come out exactly as if every row had
    been added as it was written. Writers wait meanwhile (the spool keeps their rows), so rebuild a
    long period a day at a time (``manage.py edge_rollup`` does).
    """
    if start != hour_of(start) or end != hour_of(end) or start >= end:
        raise ValueError("a rebuild needs whole hours: start and end on the hour, start before end")
    first_day, end_day = day_of(start), day_of(end) if end == day_of(end) else day_of(end) + DAY
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {LedgerEntry._meta.db_table} IN SHARE MODE")
        return _rebuild(HourlyRollup, "hour", start, end), _rebuild(DailyRollup, "day", first_day, end_day)


def _rebuild(model: type[HourlyRollup | DailyRollup], period: str, start: datetime, end: datetime) -> int:
    model.objects.filter(bucket__gte=start, bucket__lt=end).delete()
    if connection.vendor != "postgresql":
        hourly, daily = summed(_ledger_rows(start, end))
        sums = hourly if period == "hour" else daily
        upsert(model, sums)
        return len(sums)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in (*Rollup.DIMENSIONS, *MEASURES))
    sql = (
        f"INSERT INTO {model._meta.db_table} ({columns}) SELECT {bucket_sql(period)}, {DIMENSION_SQL}, {MEASURE_SQL} "
        f"FROM {LedgerEntry._meta.db_table} l WHERE l.created_at >= %s AND l.created_at < %s GROUP BY 1, 2, 3, 4, 5, "
        "6, 7, 8"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [start, end])
        return int(cursor.rowcount)


def _ledger_rows(start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    rows = LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end).order_by("id")
    after = 0
    while batch := list(rows.filter(id__gt=after).values("id", *SOURCE_COLUMNS)[:READ_BATCH]):
        yield from batch
        after = batch[-1]["id"]


def _widened(start: datetime, end: datetime, period: str) -> tuple[datetime, datetime]:
    floor = hour_of if period == "hour" else day_of
    return floor(start), end if floor(end) == end else floor(end) + (HOUR if period == "hour" else DAY)
