"""A serving process starts its ledger spool as it starts, under every ASGI server the project names:
a dead process's rows are replayed with no request arriving. Other commands start none."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson
import pytest

from apps.billing.models import LedgerEntry
from tests.factories import make_key, make_tenant, unique
from tests.harness.gateway import ROOT, GatewayProcess, free_port
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("live_db")]


class Daphne(GatewayProcess):
    def command(self) -> list[str]:
        address = ["-b", "127.0.0.1", "-p", str(self.port)]
        return [sys.executable, "-m", "daphne", *address, "edge_project.asgi:application"]


class Runserver(GatewayProcess):
    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"]


class UvicornWithoutLifespan(GatewayProcess):
    def command(self) -> list[str]:
        return [*super().command(), "--lifespan", "off"]


SERVERS: dict[str, Callable[..., GatewayProcess]] = {
    "daphne": Daphne, "manage.py runserver": Runserver, "uvicorn --lifespan off": UvicornWithoutLifespan,
    "uvicorn --workers 2": partial(GatewayProcess, workers=2),
}


def dead_processes_segment(spool_dir: Path) -> tuple[Path, list[str]]:
    """A segment as a SIGKILLed gateway leaves it (no lock held), and its rows' request ids."""
    tenant = make_tenant()
    key, _ = make_key(tenant)
    request_ids = [unique("req-dead") for _ in range(3)]
    rows = [{"request_id": request_id, "tenant_id": tenant.pk, "api_key_id": key.pk, "endpoint": "chat.completions",
             "public_model": "m", "stream": False, "status": "ok", "http_status": 200,
             "created_at": "2026-12-01T10:00:00+00:00", "latency_ms": 3} for request_id in request_ids]
    spool_dir.mkdir(parents=True)
    path = spool_dir / "ledger-deadhost-1-1-1.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path, request_ids


@pytest.mark.parametrize("server", SERVERS)
def test_it_replays_a_dead_processes_rows_when_it_starts_before_any_request(tmp_path: Path, server: str):
    segment, request_ids = dead_processes_segment(tmp_path / "spool")
    process = SERVERS[server](spool_dir=tmp_path / "spool", log_path=tmp_path / "server.log")

    process.launch()  # and no request, not even /health/live: only start-up can replay them
    try:
        def replayed() -> bool:
            assert process.process is not None and process.process.poll() is None, process.log()
            return LedgerEntry.objects.filter(request_id__in=request_ids).count() == len(request_ids)

        wait_until(replayed, timeout_s=30, what=f"{server} replaying the dead process's rows")
        wait_until(lambda: not segment.exists(), what="the segment deleted")
    finally:
        process.stop()


@pytest.mark.parametrize("command", [["migrate", "--check"], ["shell", "-c", "print('done')"]])
def test_other_commands_start_no_spool(tmp_path: Path, command: list[str]):
    segment, request_ids = dead_processes_segment(tmp_path / "spool")
    env = GatewayProcess(spool_dir=tmp_path / "spool", log_path=tmp_path / "unused.log").env

    finished = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True,
                              timeout=120)

    assert finished.returncode == 0, finished.stderr.decode()
    assert list((tmp_path / "spool").iterdir()) == [segment]  # no segment of its own, the orphan left alone
    assert not LedgerEntry.objects.filter(request_id__in=request_ids).exists()


def test_a_gateway_starts_while_the_database_is_down(tmp_path: Path):
    segment, _ = dead_processes_segment(tmp_path / "spool")
    unreachable = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"

    with Daphne(spool_dir=tmp_path / "spool", log_path=tmp_path / "server.log", env={"DATABASE_URL": unreachable}):
        # start() returned: /health/live answers. The spool runs (a segment of its own beside the dead
        # process's, which it keeps for when the database is back).
        assert len(list((tmp_path / "spool").glob("ledger-*.jsonl"))) == 2 and segment.exists()
