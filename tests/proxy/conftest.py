"""Fixtures for end-to-end tests of the request path: a served model on the session gateway, and a
second gateway with small body limits for the tests that need to cross them cheaply."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from apps.providers.fake_upstream import BackgroundFakeUpstream
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, serve

SMALL_BODY_BYTES = 4096
SMALL_UPSTREAM_BODY_BYTES = 64 * 1024


@pytest.fixture
def serve_with(gateway: GatewayProcess, fake_v1: str, live_db: None) -> Callable[..., Served]:
    """``serve_with(timeout_s=0.5, cached_price="0.075", …)``: a model served with these options."""
    return functools.partial(serve, gateway, fake_v1)


@pytest.fixture
def served(serve_with: Callable[..., Served]) -> Served:
    return serve_with()


@pytest.fixture(scope="module")
def module_serve_with(
    gateway: GatewayProcess, fake_upstream: BackgroundFakeUpstream, django_db_blocker: Any
) -> Callable[..., Served]:
    """``serve_with`` for module-scoped fixtures: a model for tests that change neither it nor its key
    (rules on the fake are still per test: the ``fake`` fixture clears them)."""

    def serve_for_module(**options: Any) -> Served:
        with django_db_blocker.unblock():
            return serve(gateway, f"{fake_upstream.base_url}/v1", **options)

    return serve_for_module


@pytest.fixture(scope="session")
def limited_gateway(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("limited-gateway")
    env = {"EDGE_MAX_BODY_BYTES": str(SMALL_BODY_BYTES), "EDGE_MAX_UPSTREAM_BODY_BYTES": str(SMALL_UPSTREAM_BODY_BYTES)}
    with django_db_blocker.unblock():
        process = GatewayProcess(spool_dir=directory / "spool", log_path=directory / "gateway.log", env=env)
    with process:
        yield process
