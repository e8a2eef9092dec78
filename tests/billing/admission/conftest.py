"""Fixtures of the admission tests: a clock the test moves, both backends, and Redis clients of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edge_project import redis_clients
from tests.billing.admission.helpers import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def fresh_redis_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test runs its own event loops (async clients are per loop); cool-downs and the blocking client are
    per process, so put them back."""
    monkeypatch.setattr(redis_clients, "_unusable_until", 0.0)
    monkeypatch.setattr(redis_clients, "_sync_client", None)
    yield
    redis_clients._unusable_until = 0.0
    redis_clients._sync_client = None


@pytest.fixture
def steady_redis(settings: Any) -> Iterator[None]:
    """Redis answers throughout: a command slowed by this busy machine must not send the test down the
    fallback path (that path has tests of its own), and the test fails if Redis failed anyway."""
    settings.REDIS_TIMEOUT_S = 5.0
    yield
    assert redis_clients._unusable_until == 0.0, "Redis failed during the test: it ran on the fallback path"


@pytest.fixture(params=["redis", "local"])
def backend(request: pytest.FixtureRequest, settings: Any) -> str:
    """Both backends keep the same contract: every test taking this runs on each."""
    if request.param == "local":
        settings.REDIS_URL = None
    else:
        request.getfixturevalue("steady_redis")
    return str(request.param)


