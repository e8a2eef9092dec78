"""Breakers in-process: pybreaker's state machine driven by outcomes recorded after the await, one trial
at a time when half-open (locally and, through Redis, across processes), and Redis trouble never
failing a request."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator

import pytest
from django.test import override_settings

from apps.routing import breakers as breakers_module
from apps.routing.breakers import Admission, BreakerBoard, SharedBreakerState, trial_key
from apps.routing.shared_state import SharedState
from apps.routing.table import RoutePolicy, Target
from edge_project import redis_clients
from tests.factories import unique
from tests.routing.test_strategies import target

POLICY = RoutePolicy(breaker_failure_threshold=5, breaker_reset_s=0.2, breaker_success_threshold=2)
_ids = iter(range(10_000_000, 20_000_000))


@pytest.fixture
def deployment() -> Target:
    return target(next(_ids), provider=unique("p"))


@pytest.fixture(autouse=True)
def fresh_redis_clients() -> Iterator[None]:
    """Each test runs its own event loop: async Redis clients are per loop, and cool-downs per process."""
    redis_clients._unusable_until = 0.0
    yield
    redis_clients._unusable_until = 0.0


async def fail(board: BreakerBoard, deployment: Target, times: int, policy: RoutePolicy = POLICY) -> None:
    for _ in range(times):
        assert await board.admit(deployment, policy, trial_ttl_s=1)
        await board.record(deployment, policy, failed=True)


def test_it_opens_after_five_failures_and_admits_nothing_until_the_reset_timeout(deployment: Target):
    async def scenario() -> list[bool]:
        board = BreakerBoard()
        await fail(board, deployment, 4)
        still_closed = await board.admit(deployment, POLICY, trial_ttl_s=1)
        await board.record(deployment, POLICY, failed=True)
        return [bool(still_closed), bool(await board.admit(deployment, POLICY, trial_ttl_s=1))]

    assert asyncio.run(scenario()) == [True, False]


def test_it_counts_consecutive_failures_only(deployment: Target):
    async def scenario() -> bool:
        board = BreakerBoard()
        await fail(board, deployment, 4)
        await board.record(deployment, POLICY, failed=False)
        await fail(board, deployment, 4)
        return bool(await board.admit(deployment, POLICY, trial_ttl_s=1))

    assert asyncio.run(scenario()) is True


def test_it_lets_one_trial_through_at_a_time_and_closes_after_two_successes(deployment: Target):
    async def scenario() -> list[object]:
        board = BreakerBoard()
        await fail(board, deployment, 5)
        await asyncio.sleep(0.25)
        admitted = [await board.admit(deployment, POLICY, trial_ttl_s=1) for _ in range(10)]
        await board.record(deployment, POLICY, failed=False, admission=Admission.TRIAL)
        second = await board.admit(deployment, POLICY, trial_ttl_s=1)
        await board.record(deployment, POLICY, failed=False, admission=second)
        return [admitted.count(Admission.TRIAL), admitted.count(Admission.REFUSED), second, board.state_of(deployment)]

    assert asyncio.run(scenario()) == [1, 9, Admission.TRIAL, "closed"]


def test_a_failed_trial_opens_the_breaker_again(deployment: Target):
    async def scenario() -> list[object]:
        board = BreakerBoard()
        await fail(board, deployment, 5)
        await asyncio.sleep(0.25)
        trial = await board.admit(deployment, POLICY, trial_ttl_s=1)
        await board.record(deployment, POLICY, failed=True, admission=trial)
        return [trial, board.state_of(deployment), bool(await board.admit(deployment, POLICY, trial_ttl_s=1))]

    assert asyncio.run(scenario()) == [Admission.TRIAL, "open", False]


def test_only_one_process_gets_the_trial_of_a_shared_half_open_breaker(deployment: Target):
    async def scenario() -> list[bool]:
        first, second = SharedState(), SharedState()  # two processes' views
        await fail(first.breakers, deployment, 5)
        await second.refresh([deployment.deployment_id])  # the second process adopts "open"
        await asyncio.sleep(0.25)
        return [bool(await first.breakers.admit(deployment, POLICY, trial_ttl_s=1)),
                bool(await second.breakers.admit(deployment, POLICY, trial_ttl_s=1))]

    assert asyncio.run(scenario()) == [True, False]


def test_a_process_adopts_another_processes_transition_on_its_next_refresh(deployment: Target):
    # A reset timeout no machine is slow enough to reach: after POLICY's 0.2 s the adopted breaker reads half-open.
    policy = dataclasses.replace(POLICY, breaker_reset_s=60)

    async def scenario() -> list[str]:
        first, second = SharedState(), SharedState()
        await second.breakers.admit(deployment, policy, trial_ttl_s=1)
        await fail(first.breakers, deployment, 5, policy)
        before = second.breakers.state_of(deployment)
        await second.refresh([deployment.deployment_id])
        return [before, second.breakers.state_of(deployment)]

    assert asyncio.run(scenario()) == ["closed", "open"]


def test_an_older_shared_state_never_overrides_a_newer_local_one(deployment: Target):
    board = BreakerBoard()
    asyncio.run(fail(board, deployment, 5))
    breaker = board.get(deployment.deployment_id, POLICY)

    breaker.adopt(SharedBreakerState("closed", 0.0, breaker.changed_at - 10))

    assert breaker.state == "open"


def test_it_keeps_working_on_its_own_view_when_redis_does_not_answer(deployment: Target):
    async def scenario() -> list[bool]:
        board = BreakerBoard()
        await fail(board, deployment, 5)
        await asyncio.sleep(0.25)
        return [bool(await board.admit(deployment, POLICY, trial_ttl_s=1)),
                bool(await board.admit(deployment, POLICY, trial_ttl_s=1))]

    # Nothing listens on port 1: every Redis command fails at once.
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        started = time.monotonic()
        assert asyncio.run(scenario()) == [True, False]  # still one trial: the local flag holds it
    assert time.monotonic() - started < 2.0


def test_forced_states_ignore_the_breaker(deployment: Target):
    async def scenario() -> list[bool]:
        board = BreakerBoard()
        await fail(board, deployment, 5)
        forced_closed = dataclasses.replace(deployment, breaker_override="closed")
        forced_open = dataclasses.replace(target(next(_ids)), breaker_override="open")
        return [bool(await board.admit(forced_closed, POLICY, trial_ttl_s=1)),
                bool(await board.admit(forced_open, POLICY, trial_ttl_s=1))]

    assert asyncio.run(scenario()) == [True, False]


def test_the_trial_key_expires_so_a_crashed_trial_does_not_block_the_breaker_forever(deployment: Target):
    async def scenario() -> bool:
        client = redis_clients.async_redis()
        assert client is not None
        claimed = await breakers_module._claim_trial(deployment.deployment_id, 0.05)
        await asyncio.sleep(0.1)
        return claimed and await breakers_module._claim_trial(deployment.deployment_id, 0.05)

    assert asyncio.run(scenario())


def test_a_call_admitted_while_closed_that_ends_during_the_trial_decides_nothing(deployment: Target):
    async def scenario() -> list[object]:
        board = BreakerBoard()
        client = redis_clients.async_redis()
        assert client is not None
        old = await board.admit(deployment, POLICY, trial_ttl_s=1)  # a long call, admitted while closed
        await fail(board, deployment, 5)
        await asyncio.sleep(0.25)
        trial = await board.admit(deployment, POLICY, trial_ttl_s=5)
        for _ in range(POLICY.breaker_success_threshold):
            await board.record(deployment, POLICY, failed=False, admission=old)  # the long call answers
        return [trial, board.state_of(deployment), await client.exists(trial_key(deployment.deployment_id)),
                bool(await board.admit(deployment, POLICY, trial_ttl_s=1))]

    assert asyncio.run(scenario()) == [Admission.TRIAL, "half-open", 1, False]  # the trial still holds its slot


def test_an_abandoned_trial_frees_the_trial_key_for_every_process(deployment: Target):
    async def scenario() -> list[object]:
        first, second = SharedState(), SharedState()
        await fail(first.breakers, deployment, 5)
        await second.refresh([deployment.deployment_id])
        await asyncio.sleep(0.25)
        trial = await first.breakers.admit(deployment, POLICY, trial_ttl_s=30)
        first.breakers.abandon(deployment, trial)  # the client left mid-trial
        await asyncio.sleep(0.05)  # the key is deleted in the background
        return [trial, await second.breakers.admit(deployment, POLICY, trial_ttl_s=1)]

    assert asyncio.run(scenario()) == [Admission.TRIAL, Admission.TRIAL]
