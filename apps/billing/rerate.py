"""Re-rating: correcting what a deployment's requests of a past period cost, with other prices.

Each request row of the deployment received in ``[start, end)`` is priced again (``cost_of``, as the
gateway prices a request) and, where the new cost differs from what the row is billed so far (its
cost plus every adjustment of it, earlier re-rates included), one adjustment row of the difference
is written, linked to the row by ``adjusts``. No row is edited. Re-rating the same period twice with
the same prices therefore writes nothing the second time, and re-rating it with other prices writes
only the difference from the first re-rate.

One adjustment per affected request, rather than one per hour and group of requests: each row's
correction is then exact at the ledger's 10 places (the gateway rounds each request's cost, so a
group's correction is only right as the sum of its rows'), traceable from the request it corrects
(admin lists a request's adjustments and its net cost), and re-rating again needs no bookkeeping
beyond the ledger itself. The rollups sum adjustments per hour and deployment like any row, so
reports and FOCUS exports see them there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from apps.billing.adjustments import COPIED, adjustment_row, count_adjustments
from apps.billing.ledger_write import parameters, write_rows
from apps.billing.models import LedgerEntry
from apps.billing.pricing import cost_of
from apps.billing.rows import Row
from apps.providers.contracts import Usage
from apps.routing.models import PriceVersion
from apps.routing.price_schedule import version_prices
from apps.routing.prices import Prices

BATCH = 2000  # request rows read, and adjustments written, at a time
_ADVISORY_LOCK_CLASS = 0x7E7A  # pg_advisory_xact_lock(class, deployment): one re-rate of a deployment at a time
_COLUMNS = ("id", "request_id", *COPIED, "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens",
            "cost_usd", "billed")


@dataclass(frozen=True, slots=True)
class Rerated:
    requests: int  # request rows in the period
    adjustments: int  # adjustment rows written (requests whose billed cost changed)
    amount_usd: Decimal  # their sum: what the period's spend changed by


def rerate(
    *, deployment_id: int, start: datetime, end: datetime, note: str,
    prices: Prices | None = None, price_version: PriceVersion | None = None,
) -> Rerated:
    """Re-rate the deployment's requests received in ``[start, end)`` at ``prices`` or ``price_version``
    (exactly one; the version must be the deployment's). Raises ValueError for a bad argument. Once
    committed, the adjustments count against their keys' and tenants' budgets in the current periods."""
    target = _prices(deployment_id, prices, price_version)
    if not note.strip():
        raise ValueError("a re-rate needs a note saying why")
    if start.tzinfo is None or end.tzinfo is None or start >= end:
        raise ValueError("a re-rate needs a period: aware start and end, start before end")
    with transaction.atomic():
        _lock(deployment_id)
        requests, written, amount = 0, list[Row](), Decimal(0)
        for batch in _batches(deployment_id, start, end):
            requests += len(batch)
            rows = [row for request in batch if (row := _adjustment(request, target, note.strip())) is not None]
            if rows:
                write_rows([parameters(row) for row in rows])
            written.extend(rows)
            amount += sum((Decimal(row["cost_usd"]) for row in rows), Decimal(0))
        transaction.on_commit(lambda: count_adjustments(written))
    return Rerated(requests=requests, adjustments=len(written), amount_usd=amount)


def _prices(deployment_id: int, prices: Prices | None, version: PriceVersion | None) -> Prices:
    if (prices is None) == (version is None):
        raise ValueError("give either prices or a price version")
    if version is None:
        assert prices is not None
        return prices
    if version.deployment_id != deployment_id:
        raise ValueError(f"price version {version.pk} is not deployment {deployment_id}'s")
    return version_prices(version)


def _lock(deployment_id: int) -> None:
    """Two re-rates of one deployment at once would each correct the same rows: the second waits."""
    if connection.vendor == "postgresql":  # SQLite runs one writing transaction at a time anyway
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_ADVISORY_LOCK_CLASS, deployment_id])


def _batches(deployment_id: int, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
    """The period's request rows with what each is billed so far, ``BATCH`` at a time, by id."""
    adjusted = (
        LedgerEntry.objects.filter(adjusts=OuterRef("request_id")).order_by()
        .values("adjusts").annotate(total=Sum("cost_usd")).values("total")
    )
    amount = DecimalField(max_digits=24, decimal_places=10)
    requests = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.REQUEST, deployment_id=deployment_id, created_at__gte=start, created_at__lt=end,
    ).order_by("id")
    after = 0
    while True:
        batch = list(
            requests.filter(id__gt=after)
            .annotate(billed=Coalesce(Subquery(adjusted, output_field=amount), Value(Decimal(0)), output_field=amount))
            .values(*_COLUMNS)[:BATCH]
        )
        if not batch:
            return
        yield batch
        after = batch[-1]["id"]


def _adjustment(request: dict[str, Any], prices: Prices, note: str) -> Row | None:
    usage = Usage(
        prompt_tokens=request["prompt_tokens"], completion_tokens=request["completion_tokens"],
        cached_tokens=request["cached_tokens"], cache_creation_tokens=request["cache_write_tokens"],
    )
    difference = cost_of(usage, prices) - (request["cost_usd"] + request["billed"])
    if not difference:
        return None
    return adjustment_row(request, amount_usd=difference, note=note, prices=prices)
