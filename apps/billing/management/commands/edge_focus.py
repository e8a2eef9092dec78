"""`manage.py edge_focus --tenant SLUG --month 2026-11 > focus.csv`: a tenant's month as FOCUS 1.2.

The same file admin's report page offers (apps.billing.reports.focus), read from the hourly rollups.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.billing.models import Tenant
from apps.billing.reports.focus import focus_csv


class Command(BaseCommand):
    help = "Write a tenant's costs for one UTC month as a FOCUS 1.2 CSV file to stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--month", required=True, type=_month, help="The UTC month, as YYYY-MM.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant has the slug {options['tenant']!r}")
        for chunk in focus_csv(tenant, options["month"]):
            self.stdout.write(chunk, ending="")


def _month(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise CommandError(f"{text!r} is not a month such as 2026-11") from None
