"""Retention: whole months of the ledger moved to compressed files, their rollups kept.

``archive_months(before=...)`` takes each UTC month before ``before`` that has rows, newest first,
and in one transaction per month: reads its rows (REPEATABLE READ on Postgres, so what is read is
exactly what is deleted, whatever the spool inserts meanwhile) into
``<directory>/ledger-YYYY-MM.<when>.jsonl.gz`` (one JSON object per row, every column, amounts as
exact decimal strings), fsyncs the file, then lifts the ledger's append-only guard for this
transaction alone (``SET LOCAL edge.ledger_retention = 'archive'``, see billing migration 0008),
logs that it does, and deletes the same rows. If the count deleted is not the count written, nothing
is deleted and the file is removed.

The hourly and daily rollups are not touched: reports and admin totals read them, so they still show
the archived months. A row that an adjustment at or after ``before`` corrects stays (its
correction points at it); a later run archives it once that adjustment is archived too.

Postgres and SQLite alike; the guard, the isolation level and the lock against a second archiver
exist only on Postgres (SQLite has one writer at a time, and no trigger to lift).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import orjson
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.billing.models import LedgerEntry

logger = logging.getLogger(__name__)
LOCK_ID = 0x6C656467  # pg advisory lock: one archiver at a time per database ("ledg")
CHUNK_ROWS = 5000


class RetentionError(Exception):
    """The archive could not be written, or the rows deleted were not the rows archived."""


@dataclass(frozen=True)
class ArchivedMonth:
    month: date  # its first day
    path: Path | None  # None: a dry run
    rows: int  # archived and deleted (a dry run: would be)


def month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def cutoff_keeping(months: int, *, today: date) -> date:
    """The first month kept when ``months`` months are kept, this one included."""
    month = month_start(today)
    for _ in range(months - 1):
        month = date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)
    return month


def archive_months(*, before: date, directory: Path, dry_run: bool = False) -> list[ArchivedMonth]:
    """Archive and delete every ledger month before ``before`` (a month's first day), newest first."""
    if before.day != 1:
        raise RetentionError(f"{before} is not the first day of a month: whole months only")
    with archiver_lock():
        done = (archive_month(month, before=before, directory=directory, dry_run=dry_run)
                for month in reversed(list(months_since_oldest(before))))
        return [month for month in done if month is not None]


def months_since_oldest(before: date) -> Iterator[date]:
    oldest = LedgerEntry.objects.order_by("created_at").values_list("created_at", flat=True).first()
    if oldest is None:
        return
    month = month_start(oldest.astimezone(UTC))
    while month < before:
        yield month
        month = next_month(month)


def month_rows(month: date, *, before: date) -> QuerySet[LedgerEntry]:
    """The month's rows, less those an adjustment kept in the ledger still points at."""
    kept = LedgerEntry.objects.filter(adjusts__isnull=False, created_at__gte=at(before)).values("adjusts_id")
    return LedgerEntry.objects.filter(created_at__gte=at(month), created_at__lt=at(next_month(month))) \
        .exclude(request_id__in=kept)


def archive_month(month: date, *, before: date, directory: Path, dry_run: bool) -> ArchivedMonth | None:
    """The month archived and deleted; None when it has no rows to archive (no file is written)."""
    rows = month_rows(month, before=before)
    if not rows.exists():
        return None
    if dry_run:
        return ArchivedMonth(month, None, rows.count())
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ledger-{month:%Y-%m}.{timezone.now():%Y%m%dT%H%M%S}.jsonl.gz"
    outermost = not connection.in_atomic_block  # inside a caller's transaction, its isolation level applies
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        written = write_archive(rows, path)
        try:
            deleted = delete_archived(rows, month=month, count=written, path=path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return ArchivedMonth(month, path, deleted)


def write_archive(rows: QuerySet[LedgerEntry], path: Path) -> int:
    """Every row as one JSON line, gzip-compressed, written to a temporary name, fsynced, then renamed."""
    columns = [field.attname for field in LedgerEntry._meta.concrete_fields]
    partial = path.with_suffix(".partial")
    count = 0
    try:
        with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as archive:
            for row in rows.order_by("created_at", "pk").values(*columns).iterator(chunk_size=CHUNK_ROWS):
                archive.write(orjson.dumps(row, default=_exact, option=orjson.OPT_APPEND_NEWLINE))
                count += 1
            archive.close()
            raw.flush()
            os.fsync(raw.fileno())
        partial.rename(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def delete_archived(rows: QuerySet[LedgerEntry], *, month: date, count: int, path: Path) -> int:
    """Delete the rows just archived, with the append-only guard lifted for this transaction only."""
    logger.warning("ledger retention: lifting the append-only guard to delete %d rows of %s, archived to %s",
                   count, f"{month:%Y-%m}", path)
    sql, params = rows.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL edge.ledger_retention = 'archive'")
        # Raw SQL: QuerySet.delete() would load every row to look for cascades (there are none to follow).
        cursor.execute(f"DELETE FROM {LedgerEntry._meta.db_table} WHERE id IN ({sql})", params)
        deleted = int(cursor.rowcount)
        if connection.vendor == "postgresql":  # the guard is back for whatever else this transaction does
            cursor.execute("SET LOCAL edge.ledger_retention = ''")
    if deleted != count:
        raise RetentionError(f"{month:%Y-%m}: archived {count} rows but the delete found {deleted}; nothing deleted")
    return deleted


@contextlib.contextmanager
def archiver_lock() -> Iterator[None]:
    """One archiver at a time (Postgres): a session lock, taken before any month's transaction begins,
    so a second archiver's snapshot starts after the first one's deletes."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_ID])
        if not cursor.fetchone()[0]:
            raise RetentionError("another archive of this ledger is running")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_ID])


def _exact(value: object) -> str:
    """Amounts as plain decimal text, every digit kept ("0.0000000000", not str()'s "0E-10")."""
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def at(month: date) -> datetime:
    return datetime(month.year, month.month, month.day, tzinfo=UTC)
