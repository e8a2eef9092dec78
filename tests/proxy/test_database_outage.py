"""Postgres down, hung or locked under a gateway: keys it knows keep working, keys it does not get a 503 with
Retry-After within about a second, and service comes back by itself.

The gateway here reaches Postgres through a TCP proxy the test controls (tests/harness/tcp_proxy.py):
the machine's Postgres is shared and is never stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.db import connection, transaction

from apps.billing.services import revoke_api_key
from tests.harness.gateway import GatewayProcess, database_address
from tests.harness.gateway import test_database_url as database_url  # not test_*: pytest would collect it
from tests.harness.served import CHAT_PATH, Served, serve, wait_for_rows
from tests.harness.tcp_proxy import TcpProxy
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("live_db")]

DB_TIMEOUT_S = 1.0  # EDGE_DB_TIMEOUT_S of these gateways
ANSWER_BOUND_S = 2.0  # the bound, plus the gateway's own work on a loaded 2-core machine
KEY_CACHE_TTL_S = 0.5  # the harness's EDGE_KEY_CACHE_TTL_S
OUTAGE_ENV = {"EDGE_DB_TIMEOUT_S": str(DB_TIMEOUT_S), "EDGE_KEY_STALE_S": "300"}


@pytest.fixture(scope="module")
def postgres_proxy() -> Iterator[TcpProxy]:
    with TcpProxy(*database_address()) as proxy:
        yield proxy


@pytest.fixture
def proxy(postgres_proxy: TcpProxy) -> Iterator[TcpProxy]:
    """The proxy, forwarding again after the test whatever the test did to it."""
    postgres_proxy.resume()
    yield postgres_proxy
    postgres_proxy.resume()


def gateway_behind(proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory, name: str) -> GatewayProcess:
    """A gateway (not started yet) whose database is reached through ``proxy``."""
    directory = tmp_path_factory.mktemp(name)
    env = {**OUTAGE_ENV, "DATABASE_URL": database_url(port=proxy.port)}
    return GatewayProcess(spool_dir=directory / "spool", log_path=directory / "gateway.log", env=env)


@pytest.fixture(scope="module")
def outage_gateway(postgres_proxy: TcpProxy, django_db_setup: None, django_db_blocker: Any,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with django_db_blocker.unblock():
        gateway = gateway_behind(postgres_proxy, tmp_path_factory, "outage-gateway")
    with gateway:
        yield gateway


@pytest.fixture
def keys(outage_gateway: GatewayProcess, proxy: TcpProxy, fake_v1: str) -> tuple[Served, str, str]:
    """A served model; its key known to the gateway, a revoked key the gateway has refused, and a valid
    key the gateway has never seen."""
    # An earlier test's outage has ended, but the gateway learns so from its next successful query.
    wait_until(lambda: httpx.get(f"{outage_gateway.url}/health/ready", timeout=30).status_code == 200,
               timeout_s=30, what="the gateway reaching its database")
    served = serve(outage_gateway, fake_v1)
    revoked_key, revoked = served.another_key()
    assert post(served, revoked).status_code == 200
    revoke_api_key(key=revoked_key)
    wait_until(lambda: post(served, revoked).status_code == 401, what="the gateway refusing the revoked key")
    _, unseen = served.another_key()
    return served, revoked, unseen


def post(served: Served, raw_key: str) -> httpx.Response:
    return served.post(served.chat_body(), headers={"Authorization": f"Bearer {raw_key}"}, timeout_s=30)


def timed(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def assert_unavailable_quickly(response: httpx.Response, seconds: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "1"
    assert seconds < ANSWER_BOUND_S, f"the 503 took {seconds:.2f} s"


def serve_through_outage(served: Served, revoked: str, unseen: str) -> list[str]:
    """What clients get while the database cannot answer; returns the served requests' ids."""
    served_ids, started = [], time.monotonic()
    while time.monotonic() - started < 3 * KEY_CACHE_TTL_S:  # well past the key's fresh life
        response, seconds = timed(lambda: post(served, served.raw_key))
        assert response.status_code == 200 and seconds < ANSWER_BOUND_S, (response.status_code, seconds)
        served_ids.append(response.headers["x-request-id"])
    for _ in range(3):
        assert_unavailable_quickly(*timed(lambda: post(served, unseen)))
    assert post(served, revoked).status_code == 401  # refused before the outage: refused during it
    return served_ids


def assert_back_by_itself(served: Served, unseen: str, served_ids: list[str]) -> None:
    wait_until(lambda: post(served, unseen).status_code == 200, timeout_s=30, what="the unseen key served")
    wait_for_rows(served_ids, timeout_s=30)  # spooled during the outage, committed once it ended


def test_while_postgres_refuses_connections_known_keys_work_and_others_get_a_quick_503(
    keys: tuple[Served, str, str], proxy: TcpProxy
):
    served, revoked, unseen = keys
    proxy.kill()

    served_ids = serve_through_outage(served, revoked, unseen)

    proxy.resume()
    assert_back_by_itself(served, unseen, served_ids)


def test_while_postgres_hangs_known_keys_work_and_others_get_a_quick_503(keys: tuple[Served, str, str],
                                                                         proxy: TcpProxy):
    served, revoked, unseen = keys
    proxy.pause()  # connections open, nothing answered: neither the pool nor a statement timeout ends a wait

    served_ids = serve_through_outage(served, revoked, unseen)

    proxy.resume()
    assert_back_by_itself(served, unseen, served_ids)


def test_the_anthropic_endpoint_says_so_in_anthropics_shape(keys: tuple[Served, str, str], proxy: TcpProxy):
    served, _, unseen = keys
    proxy.kill()
    body = {"model": served.model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}

    response = served.post(body, path="/v1/messages", headers={"x-api-key": unseen})

    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "overloaded_error"


def test_a_locked_key_table_costs_a_cold_lookup_at_most_the_bound(keys: tuple[Served, str, str]):
    served, _, unseen = keys

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE billing_apikey IN ACCESS EXCLUSIVE MODE")  # held until the block ends
        cold = timed(lambda: post(served, unseen))
        known = timed(lambda: post(served, served.raw_key))

    assert_unavailable_quickly(*cold)
    assert known[0].status_code == 200 and known[1] < ANSWER_BOUND_S
    wait_until(lambda: post(served, unseen).status_code == 200, timeout_s=30, what="the unseen key served")


def test_a_gateway_started_while_postgres_is_down_answers_within_the_bound(
    proxy: TcpProxy, keys: tuple[Served, str, str], tmp_path_factory: pytest.TempPathFactory
):
    served, _, _ = keys
    proxy.kill()
    fresh = gateway_behind(proxy, tmp_path_factory, "started-during-outage").start()  # no table, no keys cached
    try:
        models = timed(lambda: httpx.get(f"{fresh.url}/v1/models", headers=served.headers(), timeout=30))
        chat = timed(lambda: httpx.post(f"{fresh.url}{CHAT_PATH}", json=served.chat_body(), headers=served.headers(),
                                        timeout=30))
        ready = httpx.get(f"{fresh.url}/health/ready", timeout=30)

        assert_unavailable_quickly(*models)
        assert_unavailable_quickly(*chat)
        assert ready.status_code == 503

        proxy.resume()
        wait_until(lambda: httpx.post(f"{fresh.url}{CHAT_PATH}", json=served.chat_body(), headers=served.headers(),
                                      timeout=30).status_code == 200, timeout_s=30, what="the fresh gateway serving")
    finally:
        fresh.stop()
