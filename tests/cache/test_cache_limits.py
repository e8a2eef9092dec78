"""The cache on gateways configured otherwise: L1 off with a small entry limit, and no Redis at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cache.conftest import upstream_calls
from tests.harness.gateway import GatewayProcess
from tests.harness.load import post_concurrently
from tests.harness.served import CHAT_PATH, Served, serve

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


@pytest.fixture(scope="module")
def gateway_without_redis(django_db_setup: None, django_db_blocker: Any,
                          tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("no-redis-gateway")
    with django_db_blocker.unblock():
        process = GatewayProcess(spool_dir=directory / "spool", log_path=directory / "gateway.log",
                                 env={"REDIS_URL": ""})
    with process:
        yield process


def test_without_redis_the_cache_is_l1_only_and_still_makes_one_provider_call(
    gateway_without_redis: GatewayProcess, fake_v1: str, fake
):
    served = serve(gateway_without_redis, fake_v1, cache_ttl_s=300)
    fake.set_rule(served.upstream_model, latency_ms=300)

    url = f"{served.gateway.url}{CHAT_PATH}"
    answers = asyncio.run(post_concurrently(url, served.raw_key, served.chat_body(), 20))
    again = served.post(served.chat_body())

    assert [answer.status for answer in answers] == [200] * 20 and len({answer.body for answer in answers}) == 1
    assert again.headers["x-edge-cache"] == "hit-l1"
    assert upstream_calls(fake, served) == 1
