"""Fixtures for the response cache: models served with the cache on, a second gateway process on
the same Redis (for L2 hits and purges across processes), and counting what reached the provider."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from apps.providers.fake_upstream import BackgroundFakeUpstream
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, serve

CACHE_TTL_S = 300


@pytest.fixture
def serve_cached(gateway: GatewayProcess, fake_v1: str, live_db: None) -> Callable[..., Served]:
    """``serve_cached(cache_ttl_s=…, …)``: a model whose policy caches (for CACHE_TTL_S by default)."""
    return functools.partial(serve, gateway, fake_v1, cache_ttl_s=CACHE_TTL_S)


@pytest.fixture
def cached(serve_cached: Callable[..., Served]) -> Served:
    return serve_cached()


def upstream_calls(fake: BackgroundFakeUpstream, served: Served) -> int:
    """Chat requests the provider received for this served model."""
    return int(fake.stats()["by_model"].get(served.upstream_model, 0))
