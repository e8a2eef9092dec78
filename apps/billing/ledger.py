"""Recording requests in the ledger: one row per authenticated request, off the request's path.

``record_request()`` maps what happened to a request onto its ledger row and appends it to this
process's spool (apps.billing.spool) and returns; the spool's thread commits rows to the ledger
table with ``insert_rows()``, which hands back the rows the database refused so that the spool
quarantines them (apps.billing.quarantine) instead of stopping. ``start_ledger()``/``stop_ledger()``
bracket a serving process's life: the ASGI application starts the spool when it is built
(edge_project.lifespan), under every server; the first record starts it too, for anything else that
records. ``ledger_health()`` is what /health reports.
"""

from __future__ import annotations

import atexit
import secrets
import threading
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction

from apps.billing.keys import KeyInfo
from apps.billing.ledger_write import RECORD_FIELDS, LedgerRecord, Parameters, parameters, write_rows
from apps.billing.rows import Refusal, Row
from apps.billing.spool import NOTHING_SPOOLED, LedgerSpool
from apps.providers.contracts import Usage
from apps.routing.attempts import Attempt
from apps.routing.prices import Prices
from apps.routing.route_header import attempts_record


def new_request_id() -> str:
    """A request's id: in its ledger row, its x-request-id header and its log lines."""
    return f"req_{secrets.token_hex(12)}"


NEAR_FULL = 0.8  # of EDGE_LEDGER_SPOOL_MAX_BYTES: /health says degraded from here, before readiness fails

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
    prices = target.prices_at(received_at) if target else None
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
        note=note, price_version_id=prices.version_id if prices else None,
    ))


def _price_columns(prices: Prices | None) -> dict[str, str | None]:
    names = ("input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok", "cache_write_usd_per_mtok")
    return {name: str(getattr(prices, name)) if prices else None for name in names}


def append_record(record: LedgerRecord) -> None:
    spool = _spool or start_ledger()
    spool.append({name: getattr(record, name) for name in RECORD_FIELDS})  # asdict() deep-copies: slow


def start_ledger() -> LedgerSpool:
    """This process's spool, started if it was not (idempotent). Touches no database: the spool's thread
    adopts dead processes' segments, so a server's start never waits on Postgres."""
    global _spool
    with _spool_lock:
        if _spool is None:
            _spool = LedgerSpool(
                settings.EDGE_LEDGER_SPOOL_DIR,
                insert=insert_rows,
                flush_interval_s=settings.EDGE_LEDGER_FLUSH_INTERVAL_S,
                fsync=settings.EDGE_LEDGER_FSYNC,
                max_bytes=settings.EDGE_LEDGER_SPOOL_MAX_BYTES,
                release=close_connection,
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


def ledger_health() -> dict[str, Any]:
    """This process's ledger for /health; no I/O, so /health/ready can ask it on every probe.

    ``degraded`` when a row has waited longer than EDGE_LEDGER_STUCK_AFTER_S (the database has taken
    nothing for that long) or the spool directory holds ``NEAR_FULL`` of EDGE_LEDGER_SPOOL_MAX_BYTES.
    ``spool_full`` (at the bound) is the readiness condition: rows are still written to disk there,
    but a load balancer should send the process no more until the database takes them.
    """
    spool = _spool
    if spool is None:  # not started: nothing recorded yet
        status, limit = NOTHING_SPOOLED, settings.EDGE_LEDGER_SPOOL_MAX_BYTES
    else:
        status, limit = spool.status(), spool.max_bytes
    stuck = status.oldest_age_s is not None and status.oldest_age_s > settings.EDGE_LEDGER_STUCK_AFTER_S
    return {
        "status": "degraded" if stuck or status.disk_bytes >= NEAR_FULL * limit else "ok",
        "backlog": status.backlog,
        "oldest_uncommitted_s": None if status.oldest_age_s is None else round(status.oldest_age_s, 3),
        "last_flush_failed": status.last_flush_failed,
        "quarantined": status.quarantined,
        "spool_bytes": status.disk_bytes,
        "spool_max_bytes": limit,
        "spool_full": status.full,
    }


def close_connection() -> None:
    """Close this thread's database connection (a spool's thread, as it ends, gives its connection back)."""
    connection.close()


def insert_rows(rows: list[Row]) -> list[Refusal]:
    """Commit rows, skipping request ids already in the ledger (replays are idempotent); returns the rows
    the database refused, each with its reason, for the quarantine.

    One prepared INSERT for the batch: the ORM's bulk_create builds a model and compiles SQL per row,
    on a thread that shares the request path's core. A batch the database refuses is split in halves
    until the refused rows stand alone, so k bad rows among n cost about 2k·log2(n) small transactions
    and every other row is committed. Raises, committing nothing more, when the database cannot take
    any row now (``_cannot_take_rows``): the caller keeps the rows and tries again later.
    """
    if not connection.in_atomic_block:  # inside a dry run's transaction, closing would end it
        close_old_connections()  # after a Postgres restart, reconnect instead of failing forever
    batch: list[tuple[Row, Parameters]] = []
    refused = []
    for row in rows:
        try:
            batch.append((row, parameters(row)))
        except Exception as error:
            refused.append(Refusal(row, f"unreadable value: {_describe(error)}"))
    return refused + _insert(batch)


def try_rows(rows: list[Row]) -> list[Refusal]:
    """What ``insert_rows`` would refuse, committing nothing (``edge_ledger quarantine reingest --dry-run``)."""
    with transaction.atomic():
        refused = insert_rows(rows)
        transaction.set_rollback(True)
    return refused


def _insert(batch: list[tuple[Row, Parameters]]) -> list[Refusal]:
    if not batch:
        return []
    try:
        _commit([parameters for _, parameters in batch])
    except Exception as error:  # a psycopg adapter can raise plain Python errors (a lone surrogate)
        if _cannot_take_rows(error):
            raise
        if len(batch) == 1:
            return [Refusal(batch[0][0], _describe(error))]
        middle = len(batch) // 2
        return _insert(batch[:middle]) + _insert(batch[middle:])
    return []


def _commit(parameters: list[Parameters]) -> None:
    nested = connection.in_atomic_block
    with transaction.atomic():
        write_rows(parameters)
        if nested:
            # Foreign keys are deferred, and a savepoint's release checks none: check now, or a dry run
            # would report a row of a tenant that does not exist as fine.
            connection.check_constraints()


# SQLSTATEs that refuse every row alike, whatever its values: the ledger table or a column is missing
# (gateways of a release started before its migration), no privilege, a read-only server (a failover
# to a replica). Like an outage, they keep rows spooled rather than quarantine them all.
_REFUSES_EVERY_ROW = frozenset({"42P01", "42703", "42501", "25006"})


def _cannot_take_rows(error: Exception) -> bool:
    """True when the database cannot take rows at all now; False when it refused these rows' values."""
    sqlstate = getattr(error.__cause__, "sqlstate", None) or ""
    if isinstance(error, OperationalError | InterfaceError):
        return not sqlstate.startswith("54")  # a program limit (a value too large to index, say) is the row's
    return sqlstate in _REFUSES_EVERY_ROW


def _describe(error: Exception) -> str:
    """The error as one line of at most 500 characters: its class, its SQLSTATE and the database's message."""
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    message = " ".join(str(error).split())
    return f"{type(error).__name__}{f' ({sqlstate})' if sqlstate else ''}: {message}"[:500]
