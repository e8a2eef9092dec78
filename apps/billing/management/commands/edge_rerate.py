"""`manage.py edge_rerate --deployment ID --from T --to T [--price-version ID | --input … --output … …] --note …`

Re-rates a deployment's requests received in ``[--from, --to)`` (apps.billing.rerate): each request
whose billed cost differs at the given prices gets one adjustment row of the difference; no row is
edited, and running it again with the same prices writes nothing. Prices are USD per million tokens;
left out, ``--cached-input`` and ``--cache-write`` cost the input price. Times are ISO 8601 (a time
without an offset is UTC).
"""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.billing.rerate import rerate
from apps.routing.models import PriceVersion
from apps.routing.prices import Prices


def moment(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"{text!r} is not an ISO 8601 time (such as 2026-11-01 or 2026-11-01T10:00Z)") from error
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def price(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise CommandError(f"{text!r} is not a price") from error
    if not value.is_finite() or value < 0:
        raise CommandError(f"{text!r} is not a price (USD per million tokens, 0 or more)")
    return value


class Command(BaseCommand):
    help = "Re-rate a deployment's requests of a past period: adjustment rows for the differences."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--deployment", type=int, required=True, help="The deployment's id.")
        parser.add_argument("--from", dest="start", type=moment, required=True, help="First moment re-rated.")
        parser.add_argument("--to", dest="end", type=moment, required=True, help="First moment not re-rated.")
        parser.add_argument("--note", required=True, help="Why: kept on every adjustment row.")
        parser.add_argument("--price-version", type=int, help="A price version of the deployment to re-rate at.")
        parser.add_argument("--input", type=price, help="USD per million input tokens.")
        parser.add_argument("--output", type=price, help="USD per million output tokens.")
        parser.add_argument("--cached-input", type=price, help="USD per million cached input tokens.")
        parser.add_argument("--cache-write", type=price, help="USD per million tokens written to a prompt cache.")

    def handle(self, *args: Any, **options: Any) -> None:
        version, prices = self.prices(options)
        try:
            done = rerate(deployment_id=options["deployment"], start=options["start"], end=options["end"],
                          note=options["note"], prices=prices, price_version=version)
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{done.requests} requests re-rated, {done.adjustments} adjustments written, "
                          f"{done.amount_usd:f} USD in all")

    def prices(self, options: dict[str, Any]) -> tuple[PriceVersion | None, Prices | None]:
        given = [name for name in ("input", "output", "cached_input", "cache_write") if options[name] is not None]
        if options["price_version"] is not None:
            if given:
                raise CommandError("give either --price-version or prices, not both")
            version = PriceVersion.objects.filter(pk=options["price_version"]).first()
            if version is None:
                raise CommandError(f"no price version {options['price_version']}")
            return version, None
        if options["input"] is None or options["output"] is None:
            raise CommandError("give --price-version, or at least --input and --output")
        return None, Prices(
            input_usd_per_mtok=options["input"], output_usd_per_mtok=options["output"],
            cached_input_usd_per_mtok=options["cached_input"] if options["cached_input"] is not None
            else options["input"],
            cache_write_usd_per_mtok=options["cache_write"] if options["cache_write"] is not None else options["input"],
        )
