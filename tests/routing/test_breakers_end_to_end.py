"""Circuit breakers through a live gateway: a dead deployment costs clients nothing, stops receiving
traffic after five failures, is tried again once its reset timeout passes, and closes after two
successful trials. Breaker state is shared by gateway processes through Redis."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from apps.routing.models import BreakerOverride, Deployment
from tests.harness.gateway import GatewayProcess
from tests.harness.waiting import wait_until
from tests.routing.conftest import Pool, statuses

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.mark.slow
def test_it_serves_500_requests_without_an_error_while_one_of_two_deployments_fails_every_request(
    pool_with: Callable[..., Pool],
):
    pool = pool_with(strategy="round_robin")
    pool.fail(0, fail_status=500)

    answers = pool.send(500, concurrency=8)

    assert statuses(answers) == {200: 500}
    dead, healthy = pool.served_by()
    # Five failures open its breaker; requests already on their way when it opened may add a few.
    assert 5 <= dead <= 5 + 8, dead
    assert healthy == 500


def test_it_sends_nothing_to_an_open_breaker_then_one_trial_at_a_time_and_closes_after_two_successes(
    pool_with: Callable[..., Pool],
):
    pool = pool_with(strategy="round_robin", breaker_reset_s=1.0)
    pool.fail(0, fail_status=503)
    assert statuses(pool.send(20, concurrency=1)) == {200: 20}
    opened = pool.served_by()[0]
    assert opened == 5  # five failed attempts (a 503 is retried once on the same deployment), then open

    assert statuses(pool.send(20, concurrency=1)) == {200: 20}
    assert pool.served_by()[0] == opened  # open: no traffic at all

    pool.fake.reset()  # the provider recovers
    time.sleep(1.1)  # the reset timeout passes: half-open
    assert statuses(pool.send(40, concurrency=4)) == {200: 40}
    recovered, other = pool.served_by()
    assert recovered >= 15 and other >= 15  # closed again after two trial successes: round robin resumes


def test_it_lets_one_trial_through_a_half_open_breaker_even_under_concurrency(pool_with: Callable[..., Pool]):
    pool = pool_with(strategy="failover", breaker_reset_s=0.5, same_deployment_retries=0)
    pool.fail(0, fail_status=500)
    pool.send(5, concurrency=1)
    pool.fake.reset()
    pool.fail(0, latency_ms=300)  # recovered but slow: the trial is still in flight while others arrive
    time.sleep(0.6)

    assert statuses(pool.send(16, concurrency=16)) == {200: 16}

    trial, other = pool.served_by()
    assert trial == 1 and other == 15


def test_a_breaker_opened_through_one_gateway_process_is_open_in_another(
    pool_with: Callable[..., Pool], second_gateway: GatewayProcess
):
    assert_breakers_are_shared(pool_with(strategy="failover", same_deployment_retries=0), second_gateway)


def test_a_process_keeps_adopting_breakers_of_deployments_added_after_it_started_sharing(
    pool_with: Callable[..., Pool], second_gateway: GatewayProcess
):
    # Both gateways have served earlier tests: their refresh tasks started with older routing tables.
    assert_breakers_are_shared(pool_with(strategy="failover", same_deployment_retries=0), second_gateway)


def assert_breakers_are_shared(pool: Pool, second_gateway: GatewayProcess) -> None:
    assert pool.post(via=pool.served_through(second_gateway)).status_code == 200  # and has met the deployments
    pool.fake.reset()
    pool.fail(0, fail_status=500)

    assert statuses(pool.send(5, concurrency=1)) == {200: 5}  # through the first process: opens the breaker
    assert pool.served_by() == [5, 5]
    time.sleep(1.0)  # about four refresh rounds of the second process

    assert statuses(pool.send(10, concurrency=1, via=second_gateway)) == {200: 10}
    assert pool.served_by() == [5, 15]


def test_an_operator_can_force_a_breaker_open_and_closed_in_every_process(
    pool_with: Callable[..., Pool], second_gateway: GatewayProcess
):
    pool = pool_with(strategy="failover")
    pool.served_through(second_gateway)
    Deployment.objects.filter(pk=pool.deployments[0].pk).update(breaker_override=BreakerOverride.OPEN)
    reload_tables(pool, second_gateway, first_breaker="forced open")

    for via in (pool.gateway, second_gateway):
        assert statuses(pool.send(5, concurrency=1, via=via)) == {200: 5}
    assert pool.served_by() == [0, 10]

    Deployment.objects.filter(pk=pool.deployments[0].pk).update(breaker_override=BreakerOverride.CLOSED)
    reload_tables(pool, second_gateway, first_breaker="forced closed")
    pool.fail(0, fail_status=500)
    pool.send(8, concurrency=1)
    assert pool.served_by()[0] == 8  # forced closed: tried first every time, well past five failures


def reload_tables(pool: Pool, *others: GatewayProcess, first_breaker: str) -> None:
    """Make every gateway reload its routing table, until each shows the first deployment's breaker as
    ``first_breaker``: the first request after EDGE_CONFIG_TTL_S (0.1 s in tests) starts a reload and is
    itself served from the old table, and a reload takes as long as the machine lets it."""
    name = f"{pool.name} → {pool.deployments[0].provider.name}/{pool.upstream(0)}"
    for via in (pool.gateway, *others):
        def reloaded(via: GatewayProcess = via) -> bool:
            pool.post(via=via)
            return bool(via.health_detail()["providers"]["deployments"][name]["breaker"] == first_breaker)

        wait_until(reloaded, what=f"{via.url} shows the breaker {first_breaker}")
    pool.fake.reset()


def test_health_shows_each_deployments_breaker_and_recent_success_rate(pool_with: Callable[..., Pool]):
    pool = pool_with(strategy="failover", same_deployment_retries=0)
    pool.fail(0, fail_status=500)
    pool.send(10, concurrency=1)

    deployments = pool.gateway.health_detail()["providers"]["deployments"]

    dead = deployments[f"{pool.name} → {pool.deployments[0].provider.name}/{pool.upstream(0)}"]
    alive = deployments[f"{pool.name} → {pool.deployments[1].provider.name}/{pool.upstream(1)}"]
    assert (dead["breaker"], dead["success_rate"]) == ("open", 0.0)
    assert alive["breaker"] == "closed" and alive["success_rate"] == 1.0 and alive["latency_ms"] > 0


def test_it_answers_503_with_retry_after_while_every_breaker_is_open(pool_with: Callable[..., Pool]):
    pool = pool_with(size=1, breaker_reset_s=20)
    pool.fail(0, fail_status=500)
    pool.send(5, concurrency=1)

    response = pool.post()

    assert response.status_code == 503 and response.json()["error"]["code"] == "deployments_unavailable"
    assert 1 <= int(response.headers["retry-after"]) <= 20
    assert pool.served_by() == [5]



def test_health_gathered_by_one_process_is_seen_by_another(
    pool_with: Callable[..., Pool], second_gateway: GatewayProcess
):
    pool = pool_with(size=1)
    pool.post()  # the first process meets the deployment (and has one success of its own)
    pool.fail(0, latency_ms=30)
    assert statuses(pool.send(9, concurrency=1, via=pool.served_through(second_gateway))) == {200: 9}
    time.sleep(1.0)  # both processes write and read their counters every 0.25 s

    deployments = pool.gateway.health_detail()["providers"]["deployments"]

    seen = deployments[f"{pool.name} → {pool.deployments[0].provider.name}/{pool.upstream(0)}"]
    assert seen["success_rate"] == 1.0
    assert seen["latency_ms"] > 20  # nine 30 ms calls elsewhere outweigh its own instant one
