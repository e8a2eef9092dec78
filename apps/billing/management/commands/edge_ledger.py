"""`manage.py edge_ledger quarantine list|reingest [--dry-run]`: the ledger rows the database refused.
`manage.py edge_ledger archive --before YYYY-MM [--dir DIR] [--dry-run]`: retention (apps.billing.retention).

Each host keeps its quarantine in ``$EDGE_LEDGER_SPOOL_DIR/quarantine/``; run the command there, with
the gateway's environment. ``reingest`` tries every quarantined row again once the cause is fixed (a
tenant created, a migration applied) or the row itself was fixed by hand (each line of a quarantine
file is one JSON object; edit the values under ``"row"`` and keep it on one line): rows that insert
leave the quarantine, rows still refused stay with the database's new reason. Rows whose request id
is already in the ledger leave it too, unchanged in the ledger, so running it twice is harmless.
"""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import Error

from apps.billing.ledger import insert_rows, try_rows
from apps.billing.quarantine import DIRECTORY_NAME, Entry, Quarantine, Reingested
from apps.billing.retention import RetentionError, archive_months

LIST_COLUMNS = ("quarantined at", "request id", "tenant id", "reason")


class Command(BaseCommand):
    help = "List and re-ingest the ledger rows the database refused (the spool's quarantine); archive old months."

    def add_arguments(self, parser: ArgumentParser) -> None:
        assert isinstance(parser, CommandParser)
        sections = parser.add_subparsers(dest="section", required=True, parser_class=CommandParser)
        quarantine = sections.add_parser("quarantine", help="Rows the database refused, kept beside the spool.")
        actions = quarantine.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        actions.add_parser("list", help="Each quarantined row: when, request id, tenant id, the database's reason.")
        reingest = actions.add_parser("reingest", help="Insert quarantined rows again; those that insert leave.")
        reingest.add_argument("--dry-run", action="store_true",
                              help="Report what would insert and what would still be refused; change nothing.")
        archive = sections.add_parser(
            "archive", help="Move whole months before --before to .jsonl.gz files and delete them; rollups stay.")
        archive.add_argument("--before", required=True, type=_month,
                             help="The first month kept, YYYY-MM: every month before it is archived.")
        archive.add_argument("--dir", type=Path, default=None,
                             help="Where the files go (default EDGE_RETENTION_DIR).")
        archive.add_argument("--dry-run", action="store_true", help="Count each month's rows; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["section"] == "archive":
            return self.archive(options["before"], options["dir"] or settings.EDGE_RETENTION_DIR,
                                dry_run=options["dry_run"])
        quarantine = Quarantine(settings.EDGE_LEDGER_SPOOL_DIR / DIRECTORY_NAME)
        if options["action"] == "list":
            self.list_entries(quarantine)
        else:
            self.reingest(quarantine, dry_run=options["dry_run"])

    def list_entries(self, quarantine: Quarantine) -> None:
        entries = quarantine.entries()
        if not entries:
            self.stdout.write(f"the quarantine ({quarantine.directory}) is empty")
            return
        rows = [LIST_COLUMNS, *(_cells(entry) for entry in entries)]
        widths = [max(len(row[column]) for row in rows) for column in range(len(LIST_COLUMNS) - 1)]
        for row in rows:
            padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            self.stdout.write("  ".join([*padded, row[-1]]))
        self.stdout.write(f"{len(entries)} quarantined rows in {quarantine.directory}")

    def reingest(self, quarantine: Quarantine, *, dry_run: bool) -> None:
        try:
            report = quarantine.reingest(try_rows if dry_run else insert_rows, dry_run=dry_run)
        except Error as error:  # insert_rows raises only when the database cannot take any row
            raise CommandError(
                f"the database cannot take rows now ({_printable(str(error))}); files not re-ingested yet are "
                "unchanged: run it again once it can"
            ) from error
        self.report(report, dry_run=dry_run)

    def archive(self, before: date, directory: Path, *, dry_run: bool) -> None:
        try:
            months = archive_months(before=before, directory=directory, dry_run=dry_run)
        except RetentionError as error:
            raise CommandError(str(error)) from error
        for month in months:
            where = "would be archived" if month.path is None else f"archived to {month.path} and deleted"
            self.stdout.write(f"{month.month:%Y-%m}: {month.rows} rows {where}")
        if not months:
            self.stdout.write(f"no ledger rows before {before:%Y-%m}")
        elif not dry_run:
            self.stdout.write("the rollups keep these months' totals; reports still show them")

    def report(self, report: Reingested, *, dry_run: bool) -> None:
        self.stdout.write(f"{report.inserted} rows {'would be ' if dry_run else ''}re-ingested")
        for refusal in report.refused:
            request_id = _printable(str(refusal.row.get("request_id")))
            self.stdout.write(f"still refused: {request_id}: {_printable(refusal.reason)}")
        for entry in report.unreadable:
            self.stdout.write(f"not a quarantine entry, kept as it is: {entry.path.name} line {entry.number}")
        if dry_run:
            self.stdout.write("dry run: nothing was changed")


def _cells(entry: Entry) -> tuple[str, ...]:
    if entry.record is None or entry.row is None:
        return ("-", "-", "-", f"not a quarantine entry: {entry.path.name} line {entry.number}")
    row = entry.row
    return tuple(_printable(str(value)) for value in (
        entry.record.get("quarantined_at", "-"), row.get("request_id", "-"), row.get("tenant_id", "-"),
        entry.record.get("reason", "-"),
    ))


def _month(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a month (YYYY-MM)") from None


def _printable(text: str) -> str:
    """Control characters (a NUL in a refused row, say) escaped, so a terminal shows them."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)
