"""Metrics across processes: uvicorn's workers add up to one instance's totals, and two instances on one
host keep their own counts (one multiprocess directory each, fresh when an instance starts)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.gateway import GatewayProcess
from tests.harness.scraping import Scrape, scrape
from tests.harness.served import Served, serve
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("live_db")]
BATCHES, BATCH_SIZE = 10, 8


def start(directory: Path, name: str, metrics_dir: Path, *, workers: int = 1) -> GatewayProcess:
    process = GatewayProcess(spool_dir=directory / name / "spool", log_path=directory / f"{name}.log",
                             env={"EDGE_METRICS_DIR": str(metrics_dir)}, workers=workers)
    return process.start()


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for process in started:
        process.stop()


def send(served: Served, count: int) -> None:
    with ThreadPoolExecutor(max_workers=count) as pool:
        statuses = list(pool.map(lambda _: served.post(served.chat_body()).status_code, range(count)))
    assert statuses == [200] * count


def pid_of(gateway: GatewayProcess) -> int:
    """The server's own pid: uvicorn's supervisor, when it has workers."""
    assert gateway.process is not None
    return gateway.process.pid


def counter_pids(directory: Path) -> set[str]:
    return {path.stem.rpartition("_")[2] for path in directory.glob("counter_*.db")}


def test_two_workers_report_one_instances_totals_and_no_counter_ever_goes_back(
    tmp_path: Path, fake_v1: str, gateways: list[GatewayProcess],
):
    metrics_dir = tmp_path / "metrics"
    gateway = start(tmp_path, "two-workers", metrics_dir, workers=2)
    gateways.append(gateway)
    served = serve(gateway, fake_v1)
    labels: dict[str, Any] = {"provider": served.route.provider.name, "model": served.model}
    previous: Scrape | None = None
    baseline = scrape(gateway.url).value("llm_requests_total", **labels)  # serve() asked /v1/models, not this

    for _ in range(BATCHES):
        send(served, BATCH_SIZE)
        current = scrape(gateway.url)
        if previous is not None:
            went_back = {series: (value, current.monotonic_series().get(series))
                         for series, value in previous.monotonic_series().items()
                         if current.monotonic_series().get(series, 0.0) < value}
            assert not went_back
        previous = current

    sent = BATCHES * BATCH_SIZE
    # The worker not answering a scrape writes its counts out within a second (apps.proxy.metrics.upkeep).
    wait_until(lambda: scrape(gateway.url).value("llm_requests_total", **labels) - baseline == sent,
               timeout_s=5, what="every request counted")
    final = scrape(gateway.url)
    assert final.value("llm_requests_success_total", **labels) == sent
    assert final.value("llm_request_duration_seconds_count", **labels) == sent
    [instance] = [path for path in metrics_dir.iterdir() if path.is_dir()]
    assert instance.name.startswith(f"{pid_of(gateway)}-")  # the supervisor's: both workers count there
    assert len(counter_pids(instance)) == 2, "both workers counted requests"


def test_two_instances_on_one_host_keep_their_own_counts_and_a_restart_starts_afresh(
    tmp_path: Path, fake_v1: str, gateways: list[GatewayProcess],
):
    metrics_dir = tmp_path / "metrics"
    first = start(tmp_path, "first", metrics_dir)
    second = start(tmp_path, "second", metrics_dir)
    gateways.extend([first, second])
    served = serve(first, fake_v1)
    labels = {"provider": served.route.provider.name, "model": served.model}

    send(served, 3)
    assert scrape(first.url).value("llm_requests_total", **labels) == 3
    assert scrape(second.url).value("llm_requests_total", **labels) == 0
    first_dir = next(path for path in metrics_dir.iterdir() if path.name.startswith(f"{pid_of(first)}-"))

    first.stop()
    restarted = start(tmp_path, "restarted", metrics_dir)
    gateways.append(restarted)
    served.gateway = restarted
    httpx.get(f"{restarted.url}/v1/models", headers=served.headers(), timeout=10).raise_for_status()

    assert not first_dir.exists(), "the stopped instance's counts were removed by the next one to start"
    assert scrape(restarted.url).value("llm_requests_total", **labels) == 0
    assert any(path.name.startswith(f"{pid_of(second)}-") for path in metrics_dir.iterdir())
    send(served, 1)
    assert scrape(restarted.url).value("llm_requests_total", **labels) == 1
