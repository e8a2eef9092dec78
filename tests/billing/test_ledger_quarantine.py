"""Rows Postgres refuses are quarantined with its reason; the rows around them are committed, never stopped.

The spool here runs in the test process on the real test database, as a gateway's does: rows are
appended (or left on disk by a dead process), its thread commits them with ``insert_rows``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from apps.billing.ledger import close_connection, insert_rows
from apps.billing.models import ApiKey, LedgerEntry, Tenant
from apps.billing.quarantine import DIRECTORY_NAME, Quarantine
from apps.billing.rows import Row
from apps.billing.spool import LedgerSpool
from tests.factories import make_key, make_tenant, unique
from tests.harness.gateway import GatewayProcess, free_port
from tests.harness.served import serve, wait_for_rows
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.usefixtures("live_db")

# Each kind of value Postgres refuses in a ledger row, and what its refusal says.
HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "a NUL in a string column": ({"public_model": "x\x00y"}, "NUL"),
    "2**31 tokens": ({"prompt_tokens": 2**31}, "out of range"),
    "a negative token count": ({"completion_tokens": -1}, "check constraint"),
    "a cost of 1e300": ({"cost_usd": "1e300"}, "numeric field overflow"),
    "a cost that is not a number": ({"cost_usd": "NaN"}, "not a finite number"),
    "a tenant that does not exist": ({"tenant_id": 2**40}, "foreign key"),
}


@pytest.fixture
def owner() -> tuple[Tenant, ApiKey]:
    tenant = make_tenant()
    return tenant, make_key(tenant)[0]


def ledger_row(owner: tuple[Tenant, ApiKey], **values: Any) -> Row:
    tenant, key = owner
    return {"request_id": unique("req-q"), "tenant_id": tenant.pk, "api_key_id": key.pk, "endpoint": "chat.completions",
            "public_model": "m", "stream": False, "status": "ok", "http_status": 200,
            "created_at": "2026-12-01T10:00:00+00:00", "latency_ms": 3, "prompt_tokens": 10, "completion_tokens": 12,
            "usage_source": "provider", "input_usd_per_mtok": "2.5", "cost_usd": "0.000025", "attempts": [], **values}


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def start_spool(spool_dir: Path) -> Iterator[Any]:
    spools: list[LedgerSpool] = []

    def start() -> LedgerSpool:
        spool = LedgerSpool(spool_dir, insert=insert_rows, flush_interval_s=0.05, fsync=False, release=close_connection)
        spool.start()
        spools.append(spool)
        return spool

    yield start
    for spool in spools:
        spool.stop(timeout_s=5)


def quarantined(quarantine: Quarantine) -> dict[str, str]:
    """Request id → reason, for every row in a quarantine."""
    return {str(entry.row["request_id"]): entry.record["reason"]
            for entry in quarantine.entries() if entry.row is not None and entry.record is not None}


def orphan(directory: Path, name: str, rows: list[Row]) -> Path:
    """A segment as a killed process leaves it: whole lines, and no lock held."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ledger-deadhost-1-{name}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


@pytest.mark.parametrize("kind", HOSTILE)
def test_it_quarantines_a_row_postgres_refuses_and_the_next_row_still_lands(owner, start_spool, caplog, kind):
    values, reason = HOSTILE[kind]
    hostile, normal = ledger_row(owner, **values), ledger_row(owner)
    spool = start_spool()

    spool.append(hostile)
    spool.append(normal)

    wait_for_rows([normal["request_id"]], timeout_s=5)  # the flush interval is 0.05 s; the rest is the load
    wait_until(lambda: hostile["request_id"] in quarantined(spool.quarantine), what="the hostile row quarantined")
    assert reason in quarantined(spool.quarantine)[hostile["request_id"]]
    assert not LedgerEntry.objects.filter(request_id=hostile["request_id"]).exists()
    [line] = [record.getMessage() for record in caplog.records if hostile["request_id"] in record.getMessage()]
    assert "quarantined" in line and reason in line
    later = ledger_row(owner)
    spool.append(later)
    wait_for_rows([later["request_id"]], timeout_s=5)


def test_it_adopts_every_good_row_of_a_dead_processes_segment_around_the_refused_ones(owner, spool_dir,
                                                                                   start_spool):
    good = [ledger_row(owner) for _ in range(3)]
    bad = [ledger_row(owner, public_model="x\x00y"), ledger_row(owner, prompt_tokens=2**31)]
    path = orphan(spool_dir, "a", [good[0], bad[0], good[1], bad[1], good[2]])

    spool = start_spool()

    wait_until(lambda: not path.exists(), what="the segment adopted")
    wait_for_rows([row["request_id"] for row in good])
    assert set(quarantined(spool.quarantine)) == {row["request_id"] for row in bad}


def test_it_adopts_the_next_segment_after_one_whose_rows_are_all_refused(owner, spool_dir, start_spool):
    bad = ledger_row(owner, completion_tokens=-5)
    good = ledger_row(owner)
    first, second = orphan(spool_dir, "a", [bad]), orphan(spool_dir, "b", [good])

    spool = start_spool()

    wait_for_rows([good["request_id"]])
    wait_until(lambda: not first.exists() and not second.exists(), what="both segments adopted")
    assert set(quarantined(spool.quarantine)) == {bad["request_id"]}


def test_it_commits_a_healthy_batch_in_one_statement_and_one_upsert_per_rollup_row(owner):
    rows = [ledger_row(owner) for _ in range(50)]

    with CaptureQueriesContext(connection) as queries:
        assert insert_rows(rows) == []

    inserts = [query["sql"] for query in queries.captured_queries if "INSERT" in query["sql"]]
    [ledger] = [sql for sql in inserts if LedgerEntry._meta.db_table in sql]
    rollups = [sql for sql in inserts if "rollup" in sql]
    assert ledger.count("RETURNING") == 1
    assert len(rollups) == 2 and all(sql.startswith("1 times") for sql in rollups)  # the rows share one hour
    assert LedgerEntry.objects.filter(request_id__in=[row["request_id"] for row in rows]).count() == 50


def test_it_finds_one_refused_row_among_64_in_a_few_statements(owner):
    rows = [ledger_row(owner) for _ in range(64)]
    rows[41]["prompt_tokens"] = -1

    with CaptureQueriesContext(connection) as queries:
        [refusal] = insert_rows(rows)

    assert refusal.row is rows[41]
    ledger_inserts = [query for query in queries.captured_queries
                      if query["sql"].startswith(f'INSERT INTO "{LedgerEntry._meta.db_table}"')]
    assert len(ledger_inserts) <= 2 * 6 + 1  # halving
    committed = LedgerEntry.objects.filter(request_id__in=[row["request_id"] for row in rows]).count()
    assert committed == 63


def test_it_raises_instead_of_refusing_rows_when_the_database_is_unreachable(owner):
    reachable = connection.settings_dict
    try:
        with pytest.raises(OperationalError):  # raised, not returned as refused: the spool keeps the row
            on_connection({**reachable, "PORT": str(free_port())}, [ledger_row(owner)])
    finally:
        connection.settings_dict = reachable
        connection.close()


def test_it_keeps_rows_spooled_while_the_database_is_read_only(owner, spool_dir):
    # As after a failover to a replica: every insert is refused, for no fault of the rows.
    options = {**connection.settings_dict["OPTIONS"], "options": "-c default_transaction_read_only=on"}
    read_only = {**connection.settings_dict, "OPTIONS": options}
    writable, row = connection.settings_dict, ledger_row(owner)
    spool = LedgerSpool(spool_dir, insert=lambda rows: on_connection(read_only, rows), flush_interval_s=0.05,
                        fsync=False, release=close_connection)
    spool.start()
    try:
        spool.append(row)
        wait_until(lambda: spool.status().last_flush_failed, what="a failed flush")
        assert spool.status().backlog == 1 and not spool.quarantine.entries()
        spool.insert = lambda rows: on_connection(writable, rows)  # the database takes writes again
        wait_for_rows([row["request_id"]])
    finally:
        spool.stop(timeout_s=5)


def on_connection(settings_dict: dict[str, Any], rows: list[Row]) -> Any:
    """insert_rows on a connection with these settings (the spool's thread has its own connection)."""
    connection.settings_dict = settings_dict
    connection.close()
    return insert_rows(rows)


@pytest.mark.slow
def test_a_live_gateway_quarantines_what_postgres_refuses_and_records_every_request_after_it(tmp_path, fake_v1,
                                                                                            owner):
    spool_dir = tmp_path / "spool"
    hostile = [ledger_row(owner, **values) for values, _ in HOSTILE.values()]
    good = [ledger_row(owner) for _ in hostile]
    orphan(spool_dir, "a", [row for pair in zip(good, hostile, strict=True) for row in pair])  # a killed process's

    with GatewayProcess(spool_dir=spool_dir, log_path=tmp_path / "gateway.log") as gateway:
        served = serve(gateway, fake_v1)
        nul = served.post(served.chat_body(model="x\x00y"))  # its row may be one Postgres refuses
        answers = [served.post(served.chat_body()) for _ in range(3)]

        assert nul.status_code in (400, 404) and all(answer.status_code == 200 for answer in answers)
        wait_for_rows([answer.headers["x-request-id"] for answer in answers] + [row["request_id"] for row in good],
                      timeout_s=5)
        quarantine = Quarantine(spool_dir / DIRECTORY_NAME)
        wait_until(lambda: {row["request_id"] for row in hostile} <= set(quarantined(quarantine)),
                   what="the dead process's hostile rows quarantined")
        nul_id = nul.headers["x-request-id"]
        recorded = LedgerEntry.objects.filter(request_id=nul_id).exists
        wait_until(lambda: nul_id in quarantined(quarantine) or recorded(), what="the NUL request's row kept")
        wait_until(lambda: health(gateway)["quarantined"] == len(quarantined(quarantine)),
                   what="/health counting the quarantine")
        assert health(gateway)["status"] == "ok" and health(gateway)["backlog"] == 0


def health(gateway: GatewayProcess) -> dict[str, Any]:
    return dict(gateway.health_detail()["ledger"])
