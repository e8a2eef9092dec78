"""Postgres restarted under load: no answered request loses its row, and nothing fails once it is back."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from apps.billing.models import LedgerEntry
from tests.harness.gateway import GatewayProcess
from tests.harness.load import Answer, post_steadily
from tests.harness.postgres import ensure_postgres_running, restart_postgres
from tests.harness.served import CHAT_PATH, serve, wait_for_rows

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("live_db")]


@pytest.fixture
def postgres_restarts() -> Iterator[None]:
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        pytest.skip("a Postgres restart would break the tests other xdist workers run meanwhile")
    yield
    ensure_postgres_running()  # whatever happened in the test, the rest of the suite needs it


def test_it_loses_no_rows_when_postgres_restarts_under_load(tmp_path: Path, fake_v1: str, fake, postgres_restarts):
    with GatewayProcess(spool_dir=tmp_path / "spool", log_path=tmp_path / "gateway.log") as gateway:
        served = serve(gateway, fake_v1)
        fake.set_rule(served.upstream_model, latency_ms=20)
        key, raw_key = served.another_key()

        async def load_across_restart() -> tuple[float, float, list[Answer]]:
            load = asyncio.create_task(
                post_steadily(gateway.url + CHAT_PATH, raw_key, served.chat_body(), clients=10, duration_s=6)
            )
            await asyncio.sleep(1.5)
            down_at = time.monotonic()
            await asyncio.to_thread(restart_postgres)
            return down_at, time.monotonic(), await load

        down_at, back_at, answers = asyncio.run(load_across_restart())
        connection.close()  # this thread's connection died with the old server

        answered = [str(answer.request_id) for answer in answers if answer.status == 200]
        wait_for_rows(answered, timeout_s=30)  # the spool retries with backoff until Postgres takes them

    assert any(down_at <= answer.sent_at <= back_at for answer in answers), "no request overlapped the restart"
    assert all(answer.status is not None for answer in answers)
    failures = [answer for answer in answers if answer.status != 200]
    assert all(answer.is_openai_error and answer.status != 500 for answer in failures)
    assert not [answer for answer in failures if answer.sent_at > back_at]
    assert LedgerEntry.objects.filter(api_key=key).count() == len(answered)
