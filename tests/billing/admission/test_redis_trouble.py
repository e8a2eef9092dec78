"""Redis trouble never fails a request: each engine enforces its share meanwhile, comes back by itself, and
what was spent is counted; Postgres rebuilds what Redis loses; leases reclaim what a dead process held."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio.client

from apps.billing.admission import AdmissionRefused, Ticket, budget_status
from apps.billing.admission.periods import instant
from apps.billing.admission.redis_backend import Call, RedisHold, subject_keys
from apps.billing.admission.service import AdmissionService
from apps.billing.limits import Subject
from edge_project import leases
from edge_project.leases import lease_keeper
from edge_project.redis_clients import redis_usable
from tests.billing.admission.helpers import (
    Clock,
    Result,
    admitted,
    billed_key,
    demand,
    engine,
    ledger_row,
    outcome,
    outcomes,
    subject,
)
from tests.harness.redis_server import RedisServer

pytestmark = pytest.mark.usefixtures("transactional_db")  # budgets are rebuilt from the ledger


@pytest.fixture
def own_redis(tmp_path: Path, settings: Any) -> Iterator[RedisServer]:
    """A Redis of this test's own, to stop, pause, restart and flush."""
    with RedisServer(tmp_path) as server:
        settings.REDIS_URL = server.url
        settings.REDIS_COOLDOWN_S = 0.3
        yield server


async def announced(*engines: AdmissionService) -> None:
    """Every engine heartbeats, and then sees all of them."""
    for each in (*engines, *engines):
        await each.fallback.heartbeat()


def clock_time(clock: Clock) -> datetime:
    return instant(clock.ms)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def until_async(value: Callable[[], Awaitable[object]], expected: object, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (seen := await value()) != expected:
        assert loop.time() < deadline, f"still {seen!r}, not {expected!r}"
        await asyncio.sleep(0.05)


async def spent(service: AdmissionService, limited: Subject) -> Decimal:
    return (await asyncio.to_thread(budget_status, limited, service=service)).spent_usd


async def pay(service: AdmissionService, cost: str, *subjects: Subject) -> Result:
    """Admit a demand of worst case ``cost`` and, if admitted, settle it at that cost."""
    result = await outcome(service, demand(*subjects, cost=cost))
    if isinstance(result, Ticket):
        await service.settle(result, tokens=1, cost_usd=Decimal(cost))
    return result


def test_it_rebuilds_the_spend_from_the_ledger_after_redis_is_flushed(own_redis: RedisServer, clock: Clock):
    tenant, key = billed_key()
    limited = subject(id=key.pk, tenant_id=tenant.pk, budget="10")
    service = engine(clock)

    async def scenario() -> tuple[Result, Result, Decimal]:
        await pay(service, "4", limited)
        await asyncio.to_thread(ledger_row, tenant, key, "9.50", clock_time(clock))  # the ledger's spend, all told
        redis.Redis.from_url(own_redis.url).flushall()
        return await outcome(service, demand(limited, cost="1")), await pay(service, "0.50", limited), await spent(
            service, limited)

    too_much, fits, after = asyncio.run(scenario())
    assert isinstance(too_much, AdmissionRefused) and too_much.reason == "budget"
    assert too_much.budget_remaining_usd == Decimal("0.50")
    assert isinstance(fits, Ticket) and fits.budget_remaining_usd == 0
    assert after == Decimal("10")


def test_it_reclaims_the_slot_and_reservation_of_a_ticket_nobody_renews_within_the_lease(
    clock: Clock, steady_redis: None, settings: Any
):
    settings.EDGE_LEASE_S = 2
    limited = subject(max_parallel=1, budget="1")
    service = engine(clock)

    async def scenario() -> list[Result]:
        orphan = await service.admit(demand(limited, cost="0.60"))
        assert isinstance(orphan._hold, RedisHold)
        lease_keeper.drop(orphan._hold)  # its process died: nothing renews the lease any more
        clock.advance(1.999)
        held = await outcome(service, demand(limited, cost="0.60"))
        clock.advance(0.001)
        return [held, await outcome(service, demand(limited, cost="0.60"))]

    held, reclaimed = asyncio.run(scenario())
    assert isinstance(held, AdmissionRefused) and held.budget_remaining_usd == Decimal("0.40")
    assert isinstance(reclaimed, Ticket) and reclaimed.budget_remaining_usd == Decimal("0.40")


def test_it_keeps_the_slot_of_a_ticket_whose_lease_is_renewed(clock: Clock, steady_redis: None, settings: Any):
    settings.EDGE_LEASE_S = 2
    limited = subject(max_parallel=1)
    service = engine(clock)

    async def scenario() -> list[Result]:
        running = await service.admit(demand(limited))
        assert isinstance(running._hold, RedisHold)
        results = []
        for _ in range(3):  # a long stream: its process renews every lease / 3
            clock.advance(1.5)
            await leases.renew([running._hold])
            results.append(await outcome(service, demand(limited)))
        clock.advance(2)
        return [*results, await outcome(service, demand(limited))]

    *while_renewed, after_renewals_stop = asyncio.run(scenario())
    assert all(isinstance(result, AdmissionRefused) for result in while_renewed)
    assert isinstance(after_renewals_stop, Ticket)


def test_it_enforces_each_engines_share_of_every_limit_while_redis_is_down(own_redis: RedisServer, clock: Clock):
    rate, parallel, budget = subject(rpm=10), subject(max_parallel=4), subject(budget="10")
    tiny, switching, fresh = subject(rpm=1), subject(rpm=10), subject(rpm=10)
    first, second, newcomer = engine(clock), engine(clock), engine(clock)

    async def scenario() -> dict[str, list[int]]:
        await announced(first, second)
        for each in (first, second):
            await pay(each, "1", budget)
        for each in (first, second):
            await each.admit(demand(budget, cost="0"))  # each last saw $8 remaining
        before = len(admitted(await outcomes(first, [demand(switching) for _ in range(10)])))
        own_redis.stop()
        seen: dict[str, list[int]] = {"rate": [], "parallel": [], "budget": [], "tiny": [], "switching": [before]}
        for each in (first, second):
            seen["rate"].append(len(admitted(await outcomes(each, [demand(rate) for _ in range(10)]))))
            seen["parallel"].append(len(admitted(await outcomes(each, [demand(parallel) for _ in range(10)]))))
            seen["budget"].append(len(admitted([await pay(each, "1", budget) for _ in range(10)])))
            seen["tiny"].append(len(admitted(await outcomes(each, [demand(tiny) for _ in range(3)]))))
            seen["switching"].append(len(admitted(await outcomes(each, [demand(switching) for _ in range(10)]))))
            refusal = await outcome(each, demand(rate))
            assert isinstance(refusal, AdmissionRefused) and refusal.retry_after_s == 12.0  # 5 per minute each
        seen["newcomer"] = [len(admitted(await outcomes(newcomer, [demand(fresh) for _ in range(20)])))]
        return seen

    # The README's sentence: 1/N of each limit per process, N = 2 processes announced.
    assert asyncio.run(scenario()) == {
        "rate": [5, 5],  # rpm 10 between two processes
        "parallel": [2, 2],  # max_parallel 4
        "budget": [4, 4],  # half each of the $8 that remained
        "tiny": [1, 1],  # a limit below N: one request each
        "switching": [10, 5, 5],  # the minute Redis is lost: twice the limit at most
        "newcomer": [10],  # a process that never reached Redis counts itself alone
    }


def test_it_returns_to_redis_by_itself_and_counts_what_was_spent_while_it_was_away(
    own_redis: RedisServer, clock: Clock
):
    budget, slot, rate = subject(budget="10"), subject(max_parallel=1), subject(rpm=4)
    first, second = engine(clock), engine(clock)

    async def scenario() -> tuple[list[Result], Decimal, list[Result], list[Result]]:
        await announced(first, second)
        for each in (first, second):
            await pay(each, "1", budget)
        held = await first.admit(demand(budget, slot, cost="1"))  # in flight across the outage
        for each in (first, second):
            await each.admit(demand(budget, cost="0"))  # each last saw $7 remaining
        own_redis.pause()
        during = [await pay(each, "1", budget) for each in (first, second) for _ in range(5)]
        await first.settle(held, tokens=1, cost_usd=Decimal("1"))
        own_redis.resume()
        await until(lambda: redis_usable())
        clock.advance(1)
        await until_async(lambda: spent(first, budget), Decimal("9"))  # sent by the engines' upkeep
        after = [await outcome(first, demand(budget, slot, cost="1")), await outcome(second, demand(budget, cost="1"))]
        shared = [*await outcomes(first, [demand(rate) for _ in range(4)]), await outcome(second, demand(rate))]
        return during, await spent(first, budget), after, shared

    during, total, after, shared = asyncio.run(scenario())
    assert len(admitted(during)) == 6  # $3.50 each of the $7 left: three $1 requests each
    assert total == Decimal("9")  # 2 before, 1 across, 6 during
    assert isinstance(after[0], Ticket) and after[0].budget_remaining_usd == 0  # and the slot was given back
    assert isinstance(after[1], AdmissionRefused) and after[1].reason == "budget"
    assert len(admitted(shared)) == 4  # rpm 4 shared again: the second engine's request is the fifth
    assert isinstance(shared[-1], AdmissionRefused) and shared[-1].limit == "rpm"


def test_it_rebuilds_from_the_ledger_after_a_redis_restart_without_counting_the_outage_twice(
    own_redis: RedisServer, clock: Clock
):
    tenant, key = billed_key()
    limited = subject(id=key.pk, tenant_id=tenant.pk, budget="10")
    service = engine(clock)

    async def spend_and_record() -> None:
        result = await pay(service, "1", limited)
        assert isinstance(result, Ticket)
        await asyncio.to_thread(ledger_row, tenant, key, "1", clock_time(clock))  # what the pipeline records

    async def scenario() -> tuple[Decimal, Ticket | AdmissionRefused]:
        await spend_and_record()
        own_redis.stop()
        for _ in range(3):
            await spend_and_record()
        own_redis.start()  # empty: Redis lost everything
        await until(lambda: redis_usable())
        clock.advance(1)
        ticket = await outcome(service, demand(limited, cost="0"))  # the period is rebuilt from the ledger
        await service.fallback.send_kept()  # the outage's spend arrives after the rebuild, which counted it
        return await spent(service, limited), ticket

    total, ticket = asyncio.run(scenario())
    assert isinstance(ticket, Ticket) and ticket.budget_remaining_usd == Decimal("6")
    assert total == Decimal("4")


def test_it_counts_settlements_sent_again_once_and_lets_the_ledger_decide_an_ambiguous_one(
    clock: Clock, steady_redis: None
):
    tenant, key = billed_key()
    limited = subject(id=key.pk, tenant_id=tenant.pk, budget="10")
    service = engine(clock)

    async def send_twice(call: Call) -> Decimal:
        service.fallback.keep(call)
        service.fallback.keep(call)
        await service.fallback.send_kept()
        await outcome(service, demand(limited, cost="0"))  # rebuilds the period if the spend was dropped
        return await spent(service, limited)

    async def scenario() -> list[Decimal]:
        ticket = await service.admit(demand(limited, cost="2"))
        await service.settle(ticket, tokens=1, cost_usd=Decimal("1.50"))
        await asyncio.to_thread(ledger_row, tenant, key, "1.50", clock_time(clock))
        assert isinstance(ticket._hold, RedisHold)
        elsewhere = replace(ticket._hold.plan, request_id="req_elsewhere")  # a dollar spent while Redis was away
        await asyncio.to_thread(ledger_row, tenant, key, "1.00", clock_time(clock))
        after_spend = await send_twice(service.shared.spend_call(elsewhere, 10_000_000_000))
        # The first settlement was applied, but its reply was lost: it is sent again.
        lost_reply = service.shared.settle_call(ticket._hold, tokens=1, cost_units=15_000_000_000, mode="retry",
                                                spent_at=clock.ms)
        return [after_spend, await send_twice(lost_reply)]

    # The dollar spent elsewhere counts once; the ambiguous settlement is left to the ledger ($2.50), not added.
    assert asyncio.run(scenario()) == [Decimal("2.50"), Decimal("2.50")]


def test_it_falls_back_when_the_redis_client_raises_something_else_and_no_exception_escapes(
    own_redis: RedisServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
):
    limited = subject(rpm=1, budget="1")
    service = engine(clock)

    async def broken(*args: object, **kwargs: object) -> list[Any]:
        raise RuntimeError("a client bug")

    async def scenario() -> list[Result]:
        ticket = await service.admit(demand(limited, cost="0.5"))
        monkeypatch.setattr(redis.asyncio.client.Redis, "execute_command", broken)  # a script call alone
        monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", broken)  # and several together
        await service.settle(ticket, tokens=1, cost_usd=Decimal("0.5"))
        return [await outcome(service, demand(limited, cost="0.1")), await outcome(service, demand(limited))]

    during, second = asyncio.run(scenario())
    assert isinstance(during, Ticket)
    assert isinstance(second, AdmissionRefused) and second.limit == "rpm"  # the fallback still limits


def test_it_loads_its_scripts_again_after_redis_forgot_them(own_redis: RedisServer, clock: Clock):
    limited = subject(rpm=2)
    service = engine(clock)

    async def scenario() -> list[Result]:
        first = await outcome(service, demand(limited))
        redis.Redis.from_url(own_redis.url).script_flush()
        return [first, await outcome(service, demand(limited)), await outcome(service, demand(limited))]

    first, second, third = asyncio.run(scenario())
    assert isinstance(first, Ticket) and isinstance(second, Ticket)
    assert isinstance(third, AdmissionRefused) and third.limit == "rpm"
    assert redis_usable()


def test_it_falls_back_for_a_request_whose_script_fails_without_taking_redis_away_from_the_others(
    own_redis: RedisServer, clock: Clock
):
    broken, healthy = subject(rpm=1), subject(rpm=1)
    service = engine(clock)
    redis.Redis.from_url(own_redis.url).set(subject_keys(service.planner.check(broken, clock.ms))[0], "not a hash")

    async def scenario() -> list[Result]:
        return [await outcome(service, demand(broken)), await outcome(service, demand(healthy)),
                await outcome(service, demand(healthy))]

    fell_back, shared, refused_by_redis = asyncio.run(scenario())
    assert isinstance(fell_back, Ticket) and isinstance(shared, Ticket)
    assert isinstance(refused_by_redis, AdmissionRefused) and redis_usable()
