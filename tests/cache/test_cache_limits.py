"""The cache's size limits, on a gateway whose L1 is off and whose largest cacheable answer is small."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cache.conftest import upstream_calls
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, serve

pytestmark = pytest.mark.usefixtures("live_db")

MAX_ENTRY_BYTES = 2000


@pytest.fixture(scope="module")
def small_cache_gateway(django_db_setup: None, django_db_blocker: Any,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("small-cache-gateway")
    env = {"EDGE_CACHE_L1_MAX_BYTES": "0", "EDGE_CACHE_MAX_ENTRY_BYTES": str(MAX_ENTRY_BYTES)}
    with django_db_blocker.unblock():
        process = GatewayProcess(spool_dir=directory / "spool", log_path=directory / "gateway.log", env=env)
    with process:
        yield process


@pytest.fixture
def small(small_cache_gateway: GatewayProcess, fake_v1: str) -> Served:
    return serve(small_cache_gateway, fake_v1, cache_ttl_s=300)


def eventually_cached(served: Served, body: dict[str, Any]) -> str:
    # The L2 write lands just after the first answer: ask again until it has (or clearly never will).
    for _ in range(20):
        status = str(served.post(body).headers["x-edge-cache"])
        if status != "miss":
            return status
        time.sleep(0.05)
    return "miss"


def test_with_l1_off_every_hit_comes_from_redis(small: Served, fake):
    body = small.chat_body()
    first = small.post(body)

    assert first.headers["x-edge-cache"] == "miss"
    assert eventually_cached(small, body) == "hit-l2"
    assert small.post(body).headers["x-edge-cache"] == "hit-l2"
    assert upstream_calls(fake, small) == 1


def test_an_answer_larger_than_the_limit_is_not_cached(small: Served, fake):
    fake.set_rule(small.upstream_model, reply_words=400)
    first = small.post(small.chat_body())

    assert len(first.content) > MAX_ENTRY_BYTES
    assert eventually_cached(small, small.chat_body()) == "miss"
    assert upstream_calls(fake, small) == 21
