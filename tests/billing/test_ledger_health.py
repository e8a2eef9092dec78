"""The ledger's health as /health and /health/ready report it: a backlog that is stuck, a spool at its bound."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import pytest

from apps.billing import ledger
from apps.billing.ledger import ledger_health
from apps.billing.rows import Insert, Refusal, Row
from apps.billing.spool import LedgerSpool
from apps.proxy.checks import check_ledger_settings
from tests.harness.gateway import HEALTH_TOKEN, GatewayProcess
from tests.harness.gateway import test_database_url as database_url  # not test_*: pytest would collect it
from tests.harness.served import serve, wait_for_rows
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.usefixtures("live_db")


def read_only_database_url() -> str:
    """The test database, where every insert is refused as by a replica after a failover: reads still work."""
    return f"{database_url()}?options={quote('-c default_transaction_read_only=on')}"


def spooled_request_ids(spool_dir: Path) -> set[str]:
    return {orjson.loads(line)["request_id"] for path in spool_dir.glob("ledger-*.jsonl")
            for line in path.read_bytes().splitlines()}


@pytest.mark.slow
def test_it_reports_a_stuck_backlog_and_drains_at_its_bound_while_every_row_stays_on_disk(tmp_path, fake_v1):
    spool_dir = tmp_path / "spool"
    env = {"DATABASE_URL": read_only_database_url(), "EDGE_LEDGER_STUCK_AFTER_S": "1",
           "EDGE_LEDGER_SPOOL_MAX_BYTES": "4000"}
    with GatewayProcess(spool_dir=spool_dir, log_path=tmp_path / "read-only.log", env=env) as gateway:
        served = serve(gateway, fake_v1)
        assert httpx.get(f"{gateway.url}/health/ready").status_code == 200
        answered = []
        while httpx.get(f"{gateway.url}/health/ready").status_code == 200:
            response = served.post(served.chat_body())
            assert response.status_code == 200  # the gateway serves on: its rows are safe on disk
            answered.append(response.headers["x-request-id"])
            assert len(answered) < 50, "the spool never reached its bound"

        assert httpx.get(f"{gateway.url}/health/ready").json() == {"status": "error"}
        wait_until(lambda: gateway.health_detail()["ledger"]["oldest_uncommitted_s"] > 1,
                   what="a row uncommitted past EDGE_LEDGER_STUCK_AFTER_S")
        health = httpx.get(f"{gateway.url}/health", headers={"Authorization": f"Bearer {HEALTH_TOKEN}"})
        ledger_check = health.json()["checks"]["ledger"]
        assert health.status_code == 503 and health.json()["checks"]["database"]["status"] == "ok"
        assert ledger_check["status"] == "degraded"
        assert ledger_check["last_flush_failed"] and ledger_check["spool_full"]
        assert ledger_check["spool_bytes"] >= ledger_check["spool_max_bytes"] == 4000
        spooled = spooled_request_ids(spool_dir)  # the chats', and serve()'s /v1/models polls' (rows too)
        assert spooled >= set(answered) and ledger_check["backlog"] == len(spooled)

    with GatewayProcess(spool_dir=spool_dir, log_path=tmp_path / "writable.log"):
        wait_for_rows(answered)  # adopted by the next process on this directory, once the database takes writes


@pytest.fixture
def run_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., LedgerSpool]]:
    """Start a spool as this process's ledger, as start_ledger() would."""
    spools: list[LedgerSpool] = []

    def run(insert: Insert, max_bytes: int = 1 << 30) -> LedgerSpool:
        spool = LedgerSpool(tmp_path, insert=insert, flush_interval_s=0.01, fsync=False, max_bytes=max_bytes)
        spool.start()
        spools.append(spool)
        monkeypatch.setattr(ledger, "_spool", spool)
        return spool

    yield run
    for spool in spools:
        spool.stop(timeout_s=1)


def committed(rows: list[Row]) -> list[Refusal]:
    return []


def unreachable(rows: list[Row]) -> list[Refusal]:
    raise ConnectionError("the database is unreachable")


def test_it_is_healthy_while_rows_flow(run_spool):
    spool = run_spool(committed)

    spool.append({"request_id": "req_1"})

    wait_until(lambda: spool.status().backlog == 0)
    health = ledger_health()
    assert (health["status"], health["backlog"], health["oldest_uncommitted_s"]) == ("ok", 0, None)
    assert not health["last_flush_failed"] and not health["spool_full"]


def test_it_is_degraded_when_a_row_waits_longer_than_the_stuck_threshold(run_spool, settings):
    settings.EDGE_LEDGER_STUCK_AFTER_S = 0.2
    spool = run_spool(unreachable)

    spool.append({"request_id": "req_1"})

    wait_until(lambda: ledger_health()["last_flush_failed"])
    assert ledger_health()["status"] == "ok"  # failing, but not for long yet
    wait_until(lambda: ledger_health()["status"] == "degraded", timeout_s=3)
    assert ledger_health()["oldest_uncommitted_s"] > 0.2 and ledger_health()["backlog"] == 1


def test_it_is_degraded_near_the_disk_bound_and_full_at_it(run_spool):
    spool = run_spool(unreachable, max_bytes=1000)
    readings = []

    while not (health := ledger_health())["spool_full"]:
        readings.append(health)
        spool.append({"request_id": "req_1", "padding": "x" * 100})

    for health in [*readings, ledger_health()]:
        assert (health["status"] == "degraded") == (health["spool_bytes"] >= 800)  # "near": 80 % of the bound
        assert health["spool_full"] == (health["spool_bytes"] >= 1000)
    assert {health["status"] for health in readings} == {"ok", "degraded"}


@pytest.mark.parametrize(("setting", "value", "check_id"), [
    ("EDGE_LEDGER_SPOOL_MAX_BYTES", 0, "edge.E060"),
    ("EDGE_LEDGER_FLUSH_INTERVAL_S", 0, "edge.E061"),
    ("EDGE_LEDGER_STUCK_AFTER_S", -1, "edge.E062"),
    ("EDGE_LEDGER_STUCK_AFTER_S", 5, "edge.W060"),  # shorter than a retry the spool rides out
])
def test_a_misconfigured_ledger_is_caught_at_start(settings, setting: str, value: object, check_id: str):
    assert check_ledger_settings() == []
    setattr(settings, setting, value)

    assert [message.id for message in check_ledger_settings()] == [check_id]
