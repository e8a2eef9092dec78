"""Recording requests in the ledger: one row per authenticated request, off the request's path.

``record_request()`` maps what happened to a request onto its ledger row and appends it to this
process's spool (apps.billing.spool); the spool's thread commits rows to the ledger table.
``start_ledger()``/``stop_ledger()`` bracket a process's life (ASGI lifespan); the first record
starts it too, for processes without a lifespan.
"""

from __future__ import annotations

import atexit
import logging
import secrets
import threading
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction

from apps.billing.keys import KeyInfo
from apps.billing.spool import LedgerSpool, Row
from apps.providers.contracts import Usage
from apps.routing.attempts import Attempt
from apps.routing.prices import Prices
from apps.routing.route_header import attempts_record

logger = logging.getLogger(__name__)


def new_request_id() -> str:
    """A request's id: in its ledger row, its x-request-id header and its log lines."""
    return f"req_{secrets.token_hex(12)}"


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


_spool: LedgerSpool | None = None
_spool_lock = threading.Lock()


def record_request(
    *, request_id: str, key: KeyInfo, endpoint: str, model: str, stream: bool, received_at: datetime,
    status: str, http_status: int, error_type: str, latency_ms: int, ttft_ms: int | None,
    attempts: Sequence[Attempt], usage: Usage, cost_usd: Decimal, cache_status: str = "",
    cost_avoided_usd: Decimal = Decimal(0), usage_note: str = "", note: str = "",
) -> None:
    """One request's row: the serving attempt (the last) names its provider, deployment and prices."""
    target = attempts[-1].target if attempts else None
    prices = target.prices if target else None
    append_record(LedgerRecord(
        request_id=request_id, tenant_id=key.tenant_id, api_key_id=key.key_id, endpoint=endpoint,
        public_model=model, stream=stream, status=status, http_status=http_status, error_type=error_type,
        created_at=received_at.isoformat(), latency_ms=latency_ms, ttft_ms=ttft_ms,
        provider=target.upstream.provider_name if target else "",
        deployment_id=target.deployment_id if target else None,
        upstream_model=target.upstream_model if target else "",
        prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens, cache_write_tokens=usage.cache_creation_tokens, usage_source=usage.source,
        **_price_columns(prices), cost_usd=f"{cost_usd:f}", cache_status=cache_status,
        cost_avoided_usd=f"{cost_avoided_usd:f}", attempts=attempts_record(attempts), usage_note=usage_note,
        note=note,
    ))


def _price_columns(prices: Prices | None) -> dict[str, str | None]:
    names = ("input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok", "cache_write_usd_per_mtok")
    return {name: str(getattr(prices, name)) if prices else None for name in names}


def append_record(record: LedgerRecord) -> None:
    spool = _spool or start_ledger()
    spool.append({name: getattr(record, name) for name in _RECORD_FIELDS})  # asdict() deep-copies: slow


def start_ledger() -> LedgerSpool:
    global _spool
    with _spool_lock:
        if _spool is None:
            _spool = LedgerSpool(
                settings.EDGE_LEDGER_SPOOL_DIR,
                insert=insert_rows,
                flush_interval_s=settings.EDGE_LEDGER_FLUSH_INTERVAL_S,
                fsync=settings.EDGE_LEDGER_FSYNC,
            )
            _spool.start()
            atexit.register(stop_ledger)
        return _spool


def stop_ledger() -> None:
    global _spool
    with _spool_lock:
        spool, _spool = _spool, None
    if spool is not None:
        spool.stop()


def ledger_backlog() -> int:
    """Rows recorded by this process and not yet committed (health checks report it)."""
    return _spool.pending() if _spool is not None else 0


def insert_rows(rows: list[Row]) -> None:
    """Commit rows, skipping request ids already in the ledger (replays are idempotent).

    One prepared INSERT for the batch: the ORM's bulk_create builds a model and compiles SQL per row,
    on a thread that shares the request path's core. A row the database refuses on its own (a tenant
    deleted meanwhile, say) must not block the rows behind it forever: on an integrity error, rows go
    in one by one and refused ones are logged whole.
    """
    close_old_connections()  # after a Postgres restart, reconnect instead of failing forever
    statement = _insert_statement()
    parameters = [_parameters(row) for row in rows]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(statement, parameters)
    except IntegrityError:
        for row, one in zip(rows, parameters, strict=True):
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(statement, one)
            except IntegrityError:
                logger.error("ledger row refused by the database: %s", row, exc_info=True)


# LedgerRecord's fields are named after the ledger table's columns; kind is constant here.
_RECORD_FIELDS = {field.name: field.default for field in fields(LedgerRecord)}
_DECIMAL_FIELDS = {
    "input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok", "cost_usd", "cost_avoided_usd",
    "cache_write_usd_per_mtok",
}


@cache
def _insert_statement() -> str:
    from apps.billing.models import LedgerEntry

    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in (*_RECORD_FIELDS, "kind"))
    placeholders = ", ".join(["%s"] * (len(_RECORD_FIELDS) + 1))
    return (
        f"INSERT INTO {quote(LedgerEntry._meta.db_table)} ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT ({quote('request_id')}) DO NOTHING"
    )


def _parameters(row: Row) -> tuple[Any, ...]:
    # .get with the record's default: a segment spooled by an older release may lack newer fields.
    values = [row.get(name, default) for name, default in _DEFAULTS]
    values[_CREATED_AT] = connection.ops.adapt_datetimefield_value(datetime.fromisoformat(str(values[_CREATED_AT])))
    for index in _DECIMAL_INDEXES:
        if (value := values[index]) is not None:
            values[index] = connection.ops.adapt_decimalfield_value(Decimal(value))
    values[_ATTEMPTS] = connection.ops.adapt_json_value(values[_ATTEMPTS] or [], None)
    return (*values, "request")


_DEFAULTS = [(name, None if default is MISSING else default) for name, default in _RECORD_FIELDS.items()]
_CREATED_AT = list(_RECORD_FIELDS).index("created_at")
_ATTEMPTS = list(_RECORD_FIELDS).index("attempts")
_DECIMAL_INDEXES = [index for index, name in enumerate(_RECORD_FIELDS) if name in _DECIMAL_FIELDS]
