"""Fixtures shared by the whole suite.

Two ways to reach the gateway:
- in-process, through Django's test client (fast; use ``transactional_db``, because the ledger and
  the routing table are written and read from other threads);
- ``gateway``: a real uvicorn process on the real test database, for end-to-end behaviour. Data for
  it must be committed, so use ``live_db`` (no per-test rollback, no flush: names from
  tests/factories.py are unique, and the test database is dropped at the end of the session).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from django.conf import settings

from apps.providers.fake_upstream import BackgroundFakeUpstream
from tests.harness.gateway import GatewayProcess


@pytest.fixture(scope="session", autouse=True)
def redis_keys_of_this_run() -> Iterator[None]:
    """The run's keys (its own EDGE_REDIS_PREFIX, see settings/test.py) are deleted when it ends."""
    yield
    if not settings.REDIS_URL:
        return
    client = redis.Redis.from_url(str(settings.REDIS_URL))
    try:
        keys = list(client.scan_iter(match=f"{settings.EDGE_REDIS_PREFIX}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
    finally:
        client.close()


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[BackgroundFakeUpstream]:
    with BackgroundFakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(fake_upstream: BackgroundFakeUpstream) -> BackgroundFakeUpstream:
    """The fake provider with no rules, counters or recorded requests left from earlier tests."""
    fake_upstream.reset()
    return fake_upstream


@pytest.fixture
def fake_v1(fake: BackgroundFakeUpstream) -> str:
    return f"{fake.base_url}/v1"


@pytest.fixture(scope="session")
def django_db_setup(
    django_test_environment: None, django_db_blocker: Any, django_db_modify_db_settings: None
) -> Iterator[None]:
    """Always create the test database: pytest-django creates only what marked tests ask for, and
    ``live_db``/``gateway`` users carry no marker."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        databases = setup_databases(verbosity=0, interactive=False, aliases={"default"})  # type: ignore[arg-type]  # stubs say Mapping; any collection of aliases works
    yield
    with django_db_blocker.unblock():
        teardown_databases(databases, verbosity=0)


@pytest.fixture
def live_db(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="session")
def gateway(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    yield from _session_gateway("gateway", django_db_blocker, tmp_path_factory)


@pytest.fixture(scope="session")
def second_gateway(
    gateway: GatewayProcess, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """Another gateway process on the same database and Redis as ``gateway``, as a second host would be."""
    yield from _session_gateway("second-gateway", django_db_blocker, tmp_path_factory)


def _session_gateway(
    name: str, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp(name)
    with django_db_blocker.unblock():
        process = GatewayProcess(spool_dir=directory / "spool", log_path=directory / "gateway.log")
    with process:
        yield process


def wait_until_served(gateway_url: str, raw_key: str, model: str, timeout_s: float = 5.0) -> None:
    """Block until the gateway's routing table lists ``model`` for this key (config is eventually consistent)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.get(f"{gateway_url}/v1/models", headers={"Authorization": f"Bearer {raw_key}"})
        if response.status_code == 200 and any(item["id"] == model for item in response.json()["data"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"the gateway never served {model}")
