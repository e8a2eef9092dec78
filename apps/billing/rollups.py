"""Ledger rows summed into the hourly and daily rollups, in the transaction that inserts the rows.

``add_to_rollups()`` is called by ``apps.billing.ledger_write.write_rows`` (the one way rows enter the
ledger) with the rows as the database stored them. A batch is summed here first, so each distinct
rollup row costs one upsert (``INSERT … ON CONFLICT … DO UPDATE SET x = x + excluded.x``) whatever
the batch's size; upserts run in the order of their keys, so gateway processes writing at once lock
rollup rows in the same order and cannot deadlock on them.

What each ledger row adds (``contributions()``) is written a second time as SQL in
``apps.billing.rollup_sql`` for rebuilding from the ledger; the two must agree to the last digit, and
the tests hold them to it. Request rows add counts, tokens, latency, ``cost_usd`` and its split over
the four meters: each prompt meter is its tokens times its price, truncated to the ledger's 10
places, and the output meter takes the rest, so the four sum exactly to the row's ``cost_usd``.
Adjustment rows add ``adjustments`` and ``adjustment_usd`` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import cache
from typing import Any

from django.db import connection

from apps.billing.models import DailyRollup, HourlyRollup, Rollup

COST_QUANTUM = Decimal("0.0000000001")  # the ledger's 10 places (as apps.billing.pricing)
PER_TOKEN = Decimal("0.000001")  # prices are per million tokens; multiplying keeps Postgres exact too
HITS = frozenset({"hit-l1", "hit-l2"})

# The ledger columns a rollup needs, in the order ``contributions()`` reads them.
SOURCE_COLUMNS = (
    "kind", "created_at", "tenant_id", "api_key_id", "endpoint", "public_model", "provider", "deployment_id",
    "price_version_id", "status", "cache_status", "prompt_tokens", "completion_tokens", "cached_tokens",
    "cache_write_tokens", "input_usd_per_mtok", "cached_input_usd_per_mtok", "cache_write_usd_per_mtok",
    "cost_usd", "cost_avoided_usd", "latency_ms", "ttft_ms",
)
MEASURES = tuple(
    field.name for field in Rollup._meta.fields if field.name not in (*Rollup.DIMENSIONS, "id")
)
DECIMAL_MEASURES = frozenset(name for name in MEASURES if name.endswith("_usd"))
Key = tuple[Any, ...]  # a rollup row's dimensions, in Rollup.DIMENSIONS order
_SLOTS = {name: index for index, name in enumerate(MEASURES)}


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def contributions(row: Mapping[str, Any]) -> list[Any]:
    """What one ledger row (SOURCE_COLUMNS, typed) adds to its rollup rows, in MEASURES order."""
    sums: list[Any] = [Decimal(0) if name in DECIMAL_MEASURES else 0 for name in MEASURES]
    cost = _decimal(row["cost_usd"])
    if row["kind"] != "request":
        sums[_SLOTS["adjustments"]] = 1
        sums[_SLOTS["adjustment_usd"]] = cost
        return sums
    status = row["status"]
    if status in ("ok", "error", "cancelled"):
        sums[_SLOTS[f"requests_{status}"]] = 1
    sums[_SLOTS["cache_hits"]] = int(row["cache_status"] in HITS)
    prompt, cached, written = int(row["prompt_tokens"]), int(row["cached_tokens"]), int(row["cache_write_tokens"])
    for name, value in (("prompt_tokens", prompt), ("completion_tokens", int(row["completion_tokens"])),
                        ("cached_tokens", cached), ("cache_write_tokens", written)):
        sums[_SLOTS[name]] = value
    # The meters split the prompt as apps.billing.pricing.cost_of does: reads, writes, and the plain rest.
    cached = min(cached, prompt)
    written = min(written, prompt - cached)
    meters = (
        ("input_cost_usd", prompt - cached - written, row["input_usd_per_mtok"]),
        ("cached_input_cost_usd", cached, row["cached_input_usd_per_mtok"]),
        ("cache_write_cost_usd", written, row["cache_write_usd_per_mtok"]),
    )
    rest = cost
    for name, tokens, price in meters:
        part = (tokens * _decimal(price) * PER_TOKEN).quantize(COST_QUANTUM, rounding=ROUND_DOWN)
        sums[_SLOTS[name]] = part
        rest -= part
    sums[_SLOTS["output_cost_usd"]] = rest
    sums[_SLOTS["cost_usd"]] = cost
    sums[_SLOTS["cost_avoided_usd"]] = _decimal(row["cost_avoided_usd"])
    sums[_SLOTS["latency_ms_sum"]] = int(row["latency_ms"])
    sums[_SLOTS["latency_count"]] = 1
    if row["ttft_ms"] is not None:
        sums[_SLOTS["ttft_ms_sum"]] = int(row["ttft_ms"])
        sums[_SLOTS["ttft_count"]] = 1
    return sums


def dimensions(row: Mapping[str, Any], bucket: datetime) -> Key:
    return (
        bucket, int(row["tenant_id"]), int(row["api_key_id"] or 0), row["endpoint"] or "", row["public_model"] or "",
        row["provider"] or "", int(row["deployment_id"] or 0), int(row["price_version_id"] or 0),
    )


def summed(rows: Iterable[Mapping[str, Any]]) -> tuple[dict[Key, list[Any]], dict[Key, list[Any]]]:
    """Rows summed per hourly and per daily rollup key."""
    hourly: dict[Key, list[Any]] = {}
    daily: dict[Key, list[Any]] = {}
    for row in rows:
        created_at = _datetime(row["created_at"])
        values = contributions(row)
        for sums, bucket in ((hourly, hour_of(created_at)), (daily, day_of(created_at))):
            key = dimensions(row, bucket)
            total = sums.get(key)
            if total is None:
                sums[key] = values
            else:
                sums[key] = [left + right for left, right in zip(total, values, strict=True)]
    return hourly, daily


def add_to_rollups(rows: Sequence[Mapping[str, Any]]) -> None:
    """Add rows just inserted into the ledger to the rollups; call inside the inserting transaction."""
    if not rows:
        return
    hourly, daily = summed(rows)
    for model, sums in ((HourlyRollup, hourly), (DailyRollup, daily)):
        upsert(model, sums)


def upsert(model: type[Rollup], sums: Mapping[Key, Sequence[Any]]) -> None:
    """Add ``sums`` to ``model``'s rows, creating those missing, in key order (see the module's docstring)."""
    adapt = connection.ops.adapt_datetimefield_value
    parameters = [(adapt(key[0]), *key[1:], *values) for key, values in sorted(sums.items())]
    with connection.cursor() as cursor:
        cursor.executemany(_upsert_statement(model), parameters)


@cache
def _upsert_statement(model: type[Rollup]) -> str:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = (*Rollup.DIMENSIONS, *MEASURES)
    updates = ", ".join(f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in MEASURES)
    return (
        f"INSERT INTO {table} ({', '.join(quote(name) for name in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(quote(name) for name in Rollup.DIMENSIONS)}) DO UPDATE SET {updates}"
    )


def _decimal(value: Any) -> Decimal:
    """A stored amount as Decimal; SQLite hands back floats and text (it has no decimal type)."""
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _datetime(value: Any) -> datetime:
    """A stored moment, aware in UTC (SQLite's RETURNING hands back text, naive in UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
