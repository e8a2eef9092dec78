"""The ledger under load and through process deaths: no answered request without its row, none twice.

Each test runs its own gateway processes on their own spool directory, so it can kill them.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import orjson
import pytest

from apps.billing.models import LedgerEntry
from tests.harness.gateway import GatewayProcess
from tests.harness.load import Answer, post_concurrently
from tests.harness.served import CHAT_PATH, serve, wait_for_rows
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("live_db")]


def gateway_on(directory: Path, name: str, **env: str) -> GatewayProcess:
    """A gateway (to start) on ``directory``/spool, logging to ``directory``/``name``.log."""
    return GatewayProcess(spool_dir=directory / "spool", log_path=directory / f"{name}.log", env=env)


def segments(directory: Path) -> set[str]:
    return {path.name for path in (directory / "spool").glob("ledger-*.jsonl")}


def spooled_request_ids(directory: Path) -> set[str]:
    paths = (directory / "spool").glob("ledger-*.jsonl")
    return {orjson.loads(line)["request_id"] for path in paths for line in path.read_bytes().splitlines()}


def test_it_records_200_concurrent_clients_exactly_once_each(tmp_path: Path, fake_v1: str, fake):
    with gateway_on(tmp_path, "gateway") as gateway:
        served = serve(gateway, fake_v1)
        fake.set_rule(served.upstream_model, latency_ms=50)
        key, raw_key = served.another_key()
        client = served.async_client(api_key=raw_key, timeout=30)

        async def one() -> str:
            raw = await client.chat.completions.with_raw_response.create(
                model=served.model, messages=[{"role": "user", "content": "hello"}]
            )
            return raw.headers["x-request-id"]

        async def all_at_once() -> list[str]:
            async with client:
                return list(await asyncio.gather(*(one() for _ in range(200))))

        request_ids = asyncio.run(all_at_once())

        assert len(set(request_ids)) == 200
        wait_for_rows(request_ids)
        time.sleep(0.3)
        assert LedgerEntry.objects.filter(api_key=key).count() == 200


def test_it_records_every_answered_request_when_stopped_with_sigterm_under_load(tmp_path: Path, fake_v1: str, fake):
    # Flushing every 30 s: only the shutdown's own flush can commit these rows.
    with gateway_on(tmp_path, "gateway", EDGE_LEDGER_FLUSH_INTERVAL_S="30") as gateway:
        served = serve(gateway, fake_v1)
        fake.set_rule(served.upstream_model, latency_ms=500)

        async def stop_under_load() -> tuple[int, list[Answer]]:
            load = asyncio.create_task(
                post_concurrently(gateway.url + CHAT_PATH, served.raw_key, served.chat_body(), 150)
            )
            while (in_flight := (await asyncio.to_thread(fake.stats))["requests"]) < 100:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(gateway.stop, signal.SIGTERM)
            return in_flight, await load

        in_flight, answers = asyncio.run(stop_under_load())

    answered = [answer.request_id for answer in answers if answer.status == 200]
    assert len(answered) >= in_flight  # a graceful stop finishes what it had started
    assert all(answer.status in (200, None) for answer in answers)
    # No waiting: the process has exited, so what it recorded is committed or still in its spool.
    committed = set(LedgerEntry.objects.filter(request_id__in=answered).values_list("request_id", flat=True))
    assert committed == set(answered)
    assert gateway.process is not None and gateway.process.returncode in (0, -signal.SIGTERM)  # not killed


def test_it_replays_a_killed_processes_spool_once_and_only_once(tmp_path: Path, fake_v1: str):
    # Flushing every 30 s: whatever the first process answered is still in its spool when it dies.
    with gateway_on(tmp_path, "first", EDGE_LEDGER_FLUSH_INTERVAL_S="30") as first:
        served = serve(first, fake_v1)
        key, raw_key = served.another_key()
        answers = asyncio.run(post_concurrently(first.url + CHAT_PATH, raw_key, served.chat_body(), 60))
        first.kill()
    request_ids = [str(answer.request_id) for answer in answers if answer.status == 200]
    assert len(request_ids) == 60
    assert not LedgerEntry.objects.filter(api_key=key).exists()
    assert spooled_request_ids(tmp_path) >= set(request_ids)
    orphans = segments(tmp_path)
    shutil.copytree(tmp_path / "spool", tmp_path / "copy")

    with gateway_on(tmp_path, "second"):
        wait_for_rows(request_ids)
        wait_until(lambda: not segments(tmp_path) & orphans, what="orphans replayed")
    assert LedgerEntry.objects.filter(api_key=key).count() == 60

    # The same segments again, as after a crash between commit and delete: replayed, and not counted twice.
    for name in orphans:
        shutil.copy(tmp_path / "copy" / name, tmp_path / "spool" / name)
    with gateway_on(tmp_path, "third"):
        wait_until(lambda: not segments(tmp_path) & orphans, what="orphans replayed")
    assert LedgerEntry.objects.filter(api_key=key).count() == 60
