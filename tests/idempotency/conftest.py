"""Fixtures for the idempotency store: either backend (the test Redis, or in-process), a fresh in-process
store per test, and worker processes that claim keys from the other side of Redis."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import orjson
import pytest
from django.conf import settings

from apps.proxy.idempotency import StoredResponse, local
from edge_project import redis_clients
from tests.harness.gateway import ROOT
from tests.harness.waiting import wait_until

T = TypeVar("T")
_tenants = itertools.count(secrets.randbelow(10**9) * 1000)


@pytest.fixture
def fresh_state(settings: Any, monkeypatch: pytest.MonkeyPatch) -> local.LocalStore:
    """An empty in-process store, and Redis usable from the start (an earlier test's cool-down is not ours)."""
    store = local.LocalStore(settings.EDGE_IDEMPOTENCY_LOCAL_MAX_BYTES)
    monkeypatch.setattr(local, "_local", store)
    monkeypatch.setattr(redis_clients, "_unusable_until", 0.0)
    return store


@pytest.fixture(params=["redis", "in-process"])
def backend(request: pytest.FixtureRequest, settings: Any, fresh_state: local.LocalStore) -> str:
    """Each test with this fixture runs twice: on the test Redis, and without Redis configured."""
    if request.param == "in-process":
        settings.REDIS_URL = None
    return str(request.param)


def new_tenant() -> int:
    return next(_tenants)


def stored(text: str = "first", *, stream: bool = False) -> StoredResponse:
    headers = (("content-type", "text/event-stream" if stream else "application/json"), ("x-request-id", "req_1"))
    return StoredResponse(200, headers, text.encode(), stream=stream)


def run(scenario: Coroutine[Any, Any, T]) -> T:
    """Run on a fresh event loop, closing that loop's Redis client afterwards."""

    async def inside() -> T:
        try:
            return await scenario
        finally:
            await redis_clients.close_async_redis()

    return asyncio.run(inside())


async def eventually(condition: Callable[[], bool], *, timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` on the event loop until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s}s")
        await asyncio.sleep(0.005)


class Worker:
    """A process (tests/idempotency/worker.py) claiming one key on this run's Redis, as a gateway would."""

    def __init__(self, *, tenant: int, key: str, fingerprint: str, claims: int, wait_s: float,
                 env: dict[str, str] | None = None) -> None:
        options = {"tenant": tenant, "key": key, "fingerprint": fingerprint, "claims": claims, "wait_s": wait_s}
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "edge_project.settings.test",
                       "REDIS_URL": str(settings.REDIS_URL), "EDGE_REDIS_PREFIX": settings.EDGE_REDIS_PREFIX,
                       **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.idempotency.worker", orjson.dumps(options).decode()], cwd=ROOT,
            env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append(orjson.loads(line))

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()

    def count(self, event: str) -> int:
        return sum(1 for seen in self.events if seen["event"] == event)

    def waiting(self) -> int:
        counts = [seen["count"] for seen in self.events if seen["event"] == "waiting"]
        return counts[-1] if counts else 0

    def bodies(self) -> list[str]:
        return [seen["body"] for seen in self.events if seen["event"] == "replayed"]

    def wait_for(self, event: str, count: int = 1, timeout_s: float = 30.0) -> None:
        wait_until(lambda: self.count(event) >= count or self.process.poll() is not None, timeout_s=timeout_s,
                   what=f"{count} {event!r} from the worker")
        assert self.count(event) >= count, f"the worker exited with {self.process.returncode}: {self.events}"

    def kill(self) -> None:
        """SIGKILL: nothing of the worker's runs any more, its leases are no longer renewed."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def exit(self) -> None:
        if self.process.poll() is None:
            self.send("exit")
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reader.join(timeout=5)


@pytest.fixture
def workers(fresh_state: local.LocalStore) -> Iterator[Callable[..., Worker]]:
    """``workers(claims=…, …)`` starts a worker process; each is ended when the test ends."""
    started: list[Worker] = []

    def start(**options: Any) -> Worker:
        worker = Worker(**options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.exit()
