"""The one way rows enter the ledger: ``write_rows()`` inserts them and adds them to the rollups, at once.

Every writer comes here: the spool's thread (apps.billing.ledger.insert_rows, and through it the
quarantine's re-ingest), ``record_adjustment`` and re-rating (apps.billing.services, .rerate). A row
whose request id the ledger already holds is skipped (``ON CONFLICT (request_id) DO NOTHING``: replays
and re-ingests are idempotent), and only the rows the database reports inserted (``RETURNING``, with
their values as stored) are added to the rollups, in the same transaction: a committed ledger row is
always in the rollups exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import connection, transaction

from apps.billing.rollups import SOURCE_COLUMNS, add_to_rollups
from apps.billing.rows import Row

Parameters = tuple[Any, ...]  # one row's values for the INSERT, in COLUMNS order
ROWS_PER_STATEMENT = 100  # measured: faster than 50 or 500 a statement; 3,300 parameters, under every limit


@dataclass(slots=True)  # not frozen: a frozen init sets every field through object.__setattr__, per request
class LedgerRecord:
    """A ledger row as the request path produces it; JSON-native so the spool round-trips it exactly."""

    request_id: str
    tenant_id: int
    api_key_id: int
    endpoint: str
    public_model: str
    stream: bool
    status: str
    http_status: int
    created_at: str  # ISO 8601, when the request arrived
    latency_ms: int
    error_type: str = ""
    provider: str = ""
    deployment_id: int | None = None
    upstream_model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    usage_source: str = "none"
    input_usd_per_mtok: str | None = None  # Decimal as text
    output_usd_per_mtok: str | None = None
    cached_input_usd_per_mtok: str | None = None
    cost_usd: str = "0"
    ttft_ms: int | None = None
    cache_status: str = ""  # hit-l1, hit-l2, miss, bypass; "" where the endpoint has no cache
    cost_avoided_usd: str = "0"  # Decimal as text
    attempts: list[dict[str, Any]] | None = None  # the route taken; None (old segments): no attempts
    cache_write_tokens: int = 0  # of prompt_tokens; old segments lack it: they were written before it existed
    cache_write_usd_per_mtok: str | None = None  # Decimal as text
    usage_note: str = ""  # why usage is the gateway's estimate when the provider reported some
    note: str = ""  # e.g. that the request was answered by replaying an earlier one (idempotency)
    price_version_id: int | None = None  # the deployment's price version in effect when the request arrived


# LedgerRecord's fields are named after the ledger table's columns. Spooled rows are requests; an
# adjustment row (written here directly, never spooled) also says its kind and the request it adjusts.
RECORD_FIELDS = {field.name: field.default for field in fields(LedgerRecord)}
COLUMNS = (*RECORD_FIELDS, "kind", "adjusts_id")
_DECIMAL_FIELDS = {
    "input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok", "cost_usd", "cost_avoided_usd",
    "cache_write_usd_per_mtok",
}


def parameters(row: Row) -> Parameters:
    """A row's values for the INSERT; raises for a value no database column should take (NaN, say)."""
    # .get with the record's default: a segment spooled by an older release may lack newer fields.
    values = [row.get(name, default) for name, default in _DEFAULTS]
    values[_CREATED_AT] = connection.ops.adapt_datetimefield_value(datetime.fromisoformat(str(values[_CREATED_AT])))
    for index in _DECIMAL_INDEXES:
        if (value := values[index]) is not None:
            amount = Decimal(value)
            if not amount.is_finite():  # Postgres stores NaN in a numeric column, and every sum over it is NaN
                raise ValueError(f"{_FIELD_NAMES[index]} is {value!r}, not a finite number")
            values[index] = connection.ops.adapt_decimalfield_value(amount)
    values[_ATTEMPTS] = connection.ops.adapt_json_value(values[_ATTEMPTS] or [], None)
    return (*values, row.get("kind", "request"), row.get("adjusts_id"))


def write_rows(rows: Sequence[Parameters]) -> int:
    """Insert rows (``parameters()`` of each) and add those inserted to the rollups, in one transaction
    (a savepoint inside the caller's); returns how many were inserted. Raises, inserting nothing, if
    the database refuses any row."""
    inserted: list[tuple[Any, ...]] = []
    per_statement = min(ROWS_PER_STATEMENT, (connection.features.max_query_params or 65535) // len(COLUMNS))
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            part = rows[start:start + per_statement]
            cursor.execute(_insert_statement(len(part)), [value for row in part for value in row])
            inserted.extend(cursor.fetchall())
        add_to_rollups([dict(zip(SOURCE_COLUMNS, row, strict=True)) for row in inserted])
    return len(inserted)


@cache
def _insert_statement(rows: int) -> str:
    from apps.billing.models import LedgerEntry

    quote = connection.ops.quote_name
    placeholders = f"({', '.join(['%s'] * len(COLUMNS))})"
    return (
        f"INSERT INTO {quote(LedgerEntry._meta.db_table)} ({', '.join(quote(name) for name in COLUMNS)}) "
        f"VALUES {', '.join([placeholders] * rows)} "
        f"ON CONFLICT ({quote('request_id')}) DO NOTHING "
        f"RETURNING {', '.join(quote(name) for name in SOURCE_COLUMNS)}"
    )


_DEFAULTS = [(name, None if default is MISSING else default) for name, default in RECORD_FIELDS.items()]
_FIELD_NAMES = list(RECORD_FIELDS)
_CREATED_AT = _FIELD_NAMES.index("created_at")
_ATTEMPTS = _FIELD_NAMES.index("attempts")
_DECIMAL_INDEXES = [index for index, name in enumerate(RECORD_FIELDS) if name in _DECIMAL_FIELDS]
