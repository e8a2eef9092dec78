"""`manage.py edge_rollup --rebuild|--verify --from T --to T`: the hourly and daily rollups against the ledger.

``--rebuild`` recomputes the rollups of ``[--from, --to)`` from the ledger, a day per transaction (each
locks the ledger against inserts while it runs; gateways keep their rows spooled meanwhile): the
hours of the period, and every day it touches, whole. Use it after restoring or pruning ledger rows,
or to bring in rows written by a gateway of a release before rollups existed. ``--verify`` lists each
tenant and hour where the rollups differ from the ledger, and fails if any does. Times are ISO 8601,
on the hour (a time without an offset is UTC).
"""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.billing.management.commands.edge_rerate import moment
from apps.billing.rollup_checks import rebuild_rollups, verify_rollups
from apps.billing.rollups import DAY, day_of


class Command(BaseCommand):
    help = "Rebuild the rollups of a period from the ledger, or verify them against it."

    def add_arguments(self, parser: ArgumentParser) -> None:
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--rebuild", action="store_true", help="Recompute the period's rollups from the ledger.")
        action.add_argument("--verify", action="store_true", help="Compare the period's rollups with the ledger.")
        parser.add_argument("--from", dest="start", type=moment, required=True, help="First hour (on the hour).")
        parser.add_argument("--to", dest="end", type=moment, required=True, help="First hour not included.")

    def handle(self, *args: Any, **options: Any) -> None:
        start, end = options["start"], options["end"]
        if options["verify"]:
            self.verify(start, end)
            return
        hourly = daily = 0
        try:
            for chunk_start, chunk_end in _days(start, end):
                rebuilt = rebuild_rollups(start=chunk_start, end=chunk_end)
                hourly, daily = hourly + rebuilt[0], daily + rebuilt[1]
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"rebuilt {start.isoformat()} to {end.isoformat()}: {hourly} hourly rows, "
                          f"{daily} daily rows (days rebuilt whole)")

    def verify(self, start: datetime, end: datetime) -> None:
        drifts = verify_rollups(start=start, end=end)
        for drift in drifts:
            fields = ", ".join(f"{name} ledger {ledger} rollups {rollup}"
                               for name, (ledger, rollup) in drift.differences.items())
            self.stdout.write(f"tenant {drift.tenant_id} {drift.bucket.isoformat()}: {fields}")
        if drifts:
            raise CommandError(f"{len(drifts)} tenant-hours differ from the ledger; rebuild them with --rebuild")
        self.stdout.write("the rollups match the ledger")


def _days(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at midnights (UTC), so each transaction holds the ledger's lock for a day at most."""
    chunks, cursor = [], start
    while cursor < end:
        following = min(day_of(cursor) + DAY, end)
        chunks.append((cursor, following))
        cursor = following
    return chunks
