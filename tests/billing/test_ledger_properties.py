"""Whatever a row holds, the spool takes it without raising, and it ends committed or quarantined: never
both, never neither. Rows go through a real spool into the real test database, as a gateway's do."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.db import DataError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.billing.ledger import close_connection, insert_rows
from apps.billing.ledger_write import LedgerRecord
from apps.billing.models import ApiKey, LedgerEntry, Tenant
from apps.billing.rows import Row, encode_line
from apps.billing.spool import LedgerSpool
from tests.factories import make_key, make_tenant

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("live_db")]

FIELDS = [field.name for field in fields(LedgerRecord)]
INTEGERS = {"tenant_id", "api_key_id", "http_status", "latency_ms", "prompt_tokens", "completion_tokens",
            "cached_tokens", "ttft_ms", "deployment_id", "cache_write_tokens"}
DECIMALS = {"input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok", "cost_usd", "cost_avoided_usd",
            "cache_write_usd_per_mtok"}

# Any code point, lone surrogates and NUL included, and lengths past the columns'.
texts = st.one_of(st.text(st.characters(exclude_categories=()), max_size=40),
                  st.text(st.characters(categories=["Cs", "Cc"]), min_size=1, max_size=3),  # lone surrogates, NUL
                  st.text(min_size=201, max_size=300))
integers = st.one_of(st.integers(), st.sampled_from([2**31, 2**31 - 1, -1, 2**63, 2**64, -(2**63) - 1, 10**30]))
decimals = st.one_of(st.decimals(allow_nan=True, allow_infinity=True).map(str),
                     st.sampled_from(["1e300", "NaN", "-Infinity", "sNaN", "1e-300", "-0.000001", "abc", ""]))
anything = st.one_of(st.none(), st.booleans(), integers, texts, decimals, st.floats(),
                     st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers()))


def value_for(name: str) -> st.SearchStrategy[Any]:
    if name == "request_id":  # still unique: a collision with another example's row would prove nothing
        return texts.map(lambda text: f"req-prop-{os.urandom(6).hex()}-{text}")
    if name in INTEGERS:
        return st.one_of(integers, anything)
    if name in DECIMALS:
        return st.one_of(decimals, anything)
    return st.one_of(texts, anything)


changes = st.tuples(
    st.sets(st.sampled_from(FIELDS), max_size=4).flatmap(
        lambda chosen: st.fixed_dictionaries({name: value_for(name) for name in chosen})),
    st.sets(st.sampled_from(FIELDS), max_size=2),  # fields missing, as from an old or mangled segment
)


@pytest.fixture
def owner() -> tuple[Tenant, ApiKey]:
    tenant = make_tenant()
    return tenant, make_key(tenant)[0]


def valid_row(owner: tuple[Tenant, ApiKey], probe: int) -> Row:
    tenant, key = owner
    return {"request_id": f"req-prop-{os.urandom(8).hex()}", "tenant_id": tenant.pk, "api_key_id": key.pk,
            "endpoint": "chat.completions", "public_model": "m", "stream": True, "status": "ok", "http_status": 200,
            "created_at": "2026-12-01T10:00:00+00:00", "latency_ms": 3, "prompt_tokens": 10, "completion_tokens": 12,
            "usage_source": "provider", "input_usd_per_mtok": "2.5", "output_usd_per_mtok": "10",
            "cost_usd": "0.000145", "attempts": [{"deployment_id": 1}], "_probe": probe}


def build_rows(owner: tuple[Tenant, ApiKey], batch: list[tuple[dict[str, Any], set[str]]]) -> list[Row]:
    rows = []
    for probe, (values, missing) in enumerate(batch):
        row = {**valid_row(owner, probe), **values}
        rows.append({name: value for name, value in row.items() if name not in missing})
    return rows


def committed(row: Row) -> bool:
    request_id = row.get("request_id")
    try:
        return isinstance(request_id, str) and LedgerEntry.objects.filter(request_id=request_id).exists()
    except (DataError, UnicodeEncodeError):
        return False  # psycopg will not even send it (a NUL, a lone surrogate): no row can have it


def committed_as_spooled(row: Row) -> bool:
    """In the ledger under the request id the spool wrote (it writes a lone surrogate escaped)."""
    return committed(orjson.loads(encode_line(row)))


examples = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@examples
@given(st.lists(changes, min_size=1, max_size=6))
def test_insert_rows_commits_or_refuses_every_row_and_raises_for_none(owner, batch):
    rows = build_rows(owner, batch)

    refused = [refusal.row["_probe"] for refusal in insert_rows(rows)]

    landed = [row["_probe"] for row in rows if committed(row)]
    assert sorted(refused + landed) == list(range(len(rows)))


@examples
@given(st.lists(changes, min_size=1, max_size=6))
def test_every_spooled_row_ends_committed_or_quarantined_never_both_never_neither(owner, batch):
    rows = build_rows(owner, batch)
    directory = Path(tempfile.mkdtemp(prefix="ledger-property-"))
    spool = LedgerSpool(directory, insert=insert_rows, flush_interval_s=0.01, fsync=False, release=close_connection)
    spool.start()
    try:
        for row in rows:
            spool.append(row)  # never raises into the request
    finally:
        spool.stop(timeout_s=30)

    try:
        assert spool.pending() == 0
        quarantined = [entry.row["_probe"] for entry in spool.quarantine.entries() if entry.row is not None]
        landed = [row["_probe"] for row in rows if committed_as_spooled(row)]
        assert sorted(quarantined + landed) == list(range(len(rows)))
    finally:
        shutil.rmtree(directory)
