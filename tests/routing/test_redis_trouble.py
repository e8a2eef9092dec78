"""Routing when Redis is sick: a gateway whose Redis hangs keeps serving, failing over and opening
breakers on its own view; the ledger keeps the attempts of rows spooled before the column existed."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from apps.billing.ledger import insert_rows
from apps.billing.models import LedgerEntry
from apps.providers.fake_upstream import BackgroundFakeUpstream
from tests.factories import make_key, make_tenant, unique
from tests.harness.gateway import GatewayProcess, free_port
from tests.routing.conftest import Pool, make_pool, statuses


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A Redis of this test's own, so it can be paused without disturbing the shared one."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    yield process, port
    process.send_signal(signal.SIGCONT)
    process.terminate()
    process.wait(10)


@pytest.fixture
def redis_gateway(own_redis: tuple[subprocess.Popen[bytes], int], live_db: None,
                  tmp_path: Path) -> Iterator[GatewayProcess]:
    _, port = own_redis
    env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "REDIS_TIMEOUT_S": "0.2"}
    with GatewayProcess(spool_dir=tmp_path / "spool", log_path=tmp_path / "gateway.log", env=env) as process:
        yield process


@pytest.mark.slow
def test_it_keeps_serving_and_failing_over_while_its_redis_hangs(
    redis_gateway: GatewayProcess, own_redis: tuple[subprocess.Popen[bytes], int], fake: BackgroundFakeUpstream,
):
    pool: Pool = make_pool(redis_gateway, fake, strategy="failover", same_deployment_retries=0)
    assert pool.post().status_code == 200
    redis_process, _ = own_redis
    redis_process.send_signal(signal.SIGSTOP)  # hung: accepts connections, answers nothing
    pool.fake.reset()
    pool.fail(0, fail_status=500)

    started = time.monotonic()
    answers = pool.send(30, concurrency=1)

    assert statuses(answers) == {200: 30}
    assert pool.served_by()[0] == 5  # its breaker opened on this process's own view
    assert time.monotonic() - started < 10


def test_it_replays_spooled_rows_written_before_the_attempts_column(live_db: None):
    tenant = make_tenant()
    key, _ = make_key(tenant)
    request_id = unique("req-old")
    old_row = {"request_id": request_id, "tenant_id": tenant.pk, "api_key_id": key.pk, "endpoint": "chat.completions",
               "public_model": "m", "stream": False, "status": "ok", "http_status": 200,
               "created_at": "2026-11-22T10:00:00+00:00", "latency_ms": 3}

    insert_rows([old_row])
    connection.close()

    assert LedgerEntry.objects.get(request_id=request_id).attempts == []


