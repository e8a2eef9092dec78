"""Whatever a Redis command raises is Redis trouble, never a failed request: not only redis-py's own errors,
but uvloop's RuntimeError from a transport closed under a write, a parser's ValueError on a garbled reply,
and the like. Each path that talks to Redis answers "no answer" and starts the cool-down; only
cancellation passes through.

In process, every path with a transport that raises; end to end, a gateway whose "Redis" answers
every command with a reply redis-py cannot parse."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio
import redis.asyncio.connection
import redis.connection

from apps.providers.contracts import Usage
from apps.providers.fake_upstream import BackgroundFakeUpstream
from apps.proxy.auth_throttle import AuthThrottle
from apps.proxy.cache import purge, redis_tier
from apps.proxy.cache.stored import CachedAnswer
from apps.routing import breakers
from apps.routing.breakers import DeploymentBreaker
from apps.routing.shared_state import SharedState, read_shared, write_breaker_state
from apps.routing.table import RoutePolicy
from edge_project import leases, redis_clients
from edge_project.background import finish_background_work
from edge_project.redis_clients import bounded, redis_key, redis_usable
from tests.factories import unique
from tests.harness.garbling_redis import GarblingRedis
from tests.harness.gateway import GatewayProcess
from tests.harness.served import CHAT_PATH
from tests.routing.conftest import make_pool

# What a client library or an event loop raised at us, or might: none of them is a RedisError.
ERRORS = [
    RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed"),
    ValueError("invalid literal for int() with base 10: b'x'"),
    TypeError("'NoneType' object is not subscriptable"),
    AttributeError("'NoneType' object has no attribute 'write'"),
    ConnectionResetError(104, "Connection reset by peer"),
]
DEPLOYMENT_ID = 987_654_321
NO_ANSWER = object()  # a path that returns nothing: it must simply not raise


@pytest.fixture
def transport_raises(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Redis write, async and blocking, raises ``request.param``; no cool-down is running."""
    error: Exception = request.param

    async def send(self: Any, command: Any) -> None:
        raise error

    def send_blocking(self: Any, command: Any, check_health: bool = True) -> None:
        raise error

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "_send_packed_command", send)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send_blocking)
    monkeypatch.setattr(redis_clients, "_unusable_until", 0.0)  # and put back: the cool-down is not ours to keep
    yield


class Renewed:
    """A lease (edge_project.leases): one key whose expiry is pushed on."""

    def renew(self, pipe: redis.asyncio.client.Pipeline, lease_ms: int) -> None:
        pipe.pexpire(redis_key("test-lease", unique("lease")), lease_ms)


async def subscriber_reports() -> object:
    listening = asyncio.create_task(purge._listen())
    deadline = time.monotonic() + 5
    while redis_usable() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    listening.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listening
    return NO_ANSWER


async def failed_authentication_shared() -> object:
    AuthThrottle().failed("198.51.100.77")
    await finish_background_work(5)
    return NO_ANSWER


async def nothing(work: Awaitable[object]) -> object:
    await work
    return NO_ANSWER


async def blocking(work: Callable[[], object]) -> object:
    return work()


ANSWER = CachedAnswer(content=b"{}", usage=Usage(1, 1), cost_usd=Decimal(0))
PATHS: dict[str, tuple[Callable[[], Coroutine[Any, Any, object]], object]] = {
    "bounded": (lambda: bounded(lambda client: client.get("key")), None),
    "breaker trial claim": (lambda: breakers._claim_trial(DEPLOYMENT_ID, 1.0), True),  # the local flag decides
    "breaker trial release": (lambda: nothing(breakers._release_trial(DEPLOYMENT_ID)), NO_ANSWER),
    "breaker publish": (lambda: nothing(breakers.publish(DeploymentBreaker(DEPLOYMENT_ID, RoutePolicy()))),
                        NO_ANSWER),
    "cache lookup": (lambda: redis_tier.fetch(redis_key("cache", unique("k")), lock=True), redis_tier.NOTHING),
    "cache store": (lambda: nothing(redis_tier.store(redis_key("cache", unique("k")), ANSWER, 60, "token")),
                    NO_ANSWER),
    "shared state refresh": (lambda: nothing(SharedState().refresh([DEPLOYMENT_ID])), NO_ANSWER),
    "purge counters": (purge._reload_generations, False),
    "purge subscriber": (subscriber_reports, NO_ANSWER),
    "lease renewal": (lambda: nothing(leases.renew([Renewed()])), NO_ANSWER),
    "failed authentication shared": (failed_authentication_shared, NO_ANSWER),
    "admin purge": (lambda: blocking(lambda: purge.purge_tenant(tenant_id=DEPLOYMENT_ID)), False),  # this process only
    "admin breaker states": (lambda: blocking(lambda: read_shared([DEPLOYMENT_ID])), ({}, {})),
    "admin breaker write": (lambda: blocking(lambda: write_breaker_state(DEPLOYMENT_ID, breakers.SharedBreakerState(
        "closed", 0.0, time.time()))), None),
}


@pytest.mark.parametrize("transport_raises", ERRORS, indirect=True, ids=lambda error: type(error).__name__)
@pytest.mark.parametrize("path", PATHS)
def test_whatever_a_redis_command_raises_is_no_answer_and_starts_the_cool_down(transport_raises: None, path: str):
    run, expected = PATHS[path]

    answer: object = asyncio.run(run())

    assert answer == expected
    assert not redis_usable()  # reported: the next requests skip Redis instead of paying for it again


def test_cancellation_passes_through_the_boundary(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(redis_clients, "_unusable_until", 0.0)

    async def cancelled(client: redis.asyncio.Redis) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(bounded(cancelled))
    assert redis_usable()  # a request that was cancelled says nothing about Redis


# --- End to end -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def garbling_redis() -> Iterator[GarblingRedis]:
    with GarblingRedis() as server:
        yield server


@pytest.fixture(scope="module")
def garbled_gateway(garbling_redis: GarblingRedis, django_db_setup: None, django_db_blocker: Any,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("garbled-gateway")
    # A short cool-down: Redis is tried again, and fails again, many times over the test.
    env = {"REDIS_URL": garbling_redis.url, "REDIS_COOLDOWN_S": "0.02", "EDGE_AUTH_FAILURES_MAX": "1000"}
    with django_db_blocker.unblock():
        process = GatewayProcess(spool_dir=directory / "spool", log_path=directory / "gateway.log", env=env)
    with process:
        yield process


@pytest.mark.slow
def test_a_redis_that_answers_garbage_costs_clients_nothing(
    garbled_gateway: GatewayProcess, garbling_redis: GarblingRedis, fake: BackgroundFakeUpstream, live_db: None
):
    # Cached answers (lookups, stores, purge counters), a failing first deployment (breakers publish,
    # and claim trials once half-open), streams, and bad keys (failures shared): every path meets Redis.
    pool = make_pool(garbled_gateway, fake, cache_enabled=True, cache_ttl_s=300, same_deployment_retries=0,
                     breaker_reset_s=0.1)
    pool.fail(0, fail_status=500)
    connections_before = garbling_redis.connections

    answers = [pool.post(pool.body(f"question {number % 7}", stream=number % 2 == 1)) for number in range(40)]
    refused = httpx.post(f"{garbled_gateway.url}{CHAT_PATH}", json=pool.body(),
                         headers={"Authorization": "Bearer sk-edge-not-a-key"}, timeout=10)

    assert [answer.status_code for answer in answers] == [200] * 40
    assert refused.status_code == 401
    assert garbling_redis.connections > connections_before  # Redis was asked, and answered garbage
    assert {answer.headers.get("x-edge-cache") for answer in answers} >= {"miss", "hit-l1"}
