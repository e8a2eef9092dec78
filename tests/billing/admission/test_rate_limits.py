"""Rate limits and concurrency caps: exact under concurrency, across processes, with exact retry times."""

from __future__ import annotations

import asyncio
import multiprocessing
from decimal import Decimal

import pytest

from apps.billing.admission import AdmissionRefused, Ticket
from tests.billing.admission.helpers import (
    Clock,
    Result,
    admitted,
    demand,
    engine,
    on_threads,
    outcome,
    outcomes,
    refused,
    subject,
)
from tests.billing.admission.worker import admit_concurrently


@pytest.mark.slow
def test_it_admits_exactly_rpm_requests_of_40_concurrent_ones_from_two_processes(
    clock: Clock, steady_redis: None, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("REDIS_TIMEOUT_S", "5")  # the processes' steady_redis
    limited = subject(rpm=10)
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(2) as pool:
        runs = [pool.apply_async(admit_concurrently, ((limited,), 20, clock.ms)) for _ in range(2)]
        results = [result for run in runs for result in run.get(timeout=120)]

    assert sum(1 for ok, _ in results if ok) == 10
    # At rpm 10 a request fits every 6 s: all 30 refusals, made while the bucket was full, say 6 s.
    assert {retry for ok, retry in results if not ok} == {6.0}

    async def after(seconds: float) -> Result:
        clock.advance(seconds)
        return await outcome(engine(clock), demand(limited))

    assert isinstance(asyncio.run(after(5.999)), AdmissionRefused)
    assert isinstance(asyncio.run(after(0.001)), Ticket)


def test_it_admits_exactly_rpm_of_40_concurrent_demands_and_the_retry_time_is_exact(backend: str, clock: Clock):
    limited = subject(rpm=10)
    service = engine(clock)

    async def scenario() -> tuple[list[Result], Result, Result]:
        results = await outcomes(service, [demand(limited) for _ in range(40)])
        clock.advance(5.999)
        early = await outcome(service, demand(limited))
        clock.advance(0.001)
        return results, early, await outcome(service, demand(limited))

    results, early, on_time = asyncio.run(scenario())
    assert len(admitted(results)) == 10
    assert {refusal.retry_after_s for refusal in refused(results)} == {6.0}
    assert {(refusal.reason, refusal.limit, refusal.subject) for refusal in refused(results)} == {
        ("rate_limit", "rpm", limited)}
    assert isinstance(early, AdmissionRefused) and early.retry_after_s == pytest.approx(0.001)
    assert isinstance(on_time, Ticket)


def test_it_rounds_a_retry_time_up_to_the_first_millisecond_at_which_the_demand_fits(backend: str, clock: Clock):
    limited = subject(rpm=7)  # one request every 8571.43 ms
    service = engine(clock)

    async def scenario() -> list[Result]:
        full = await outcomes(service, [demand(limited) for _ in range(8)])
        clock.advance(8.571)
        early = await outcome(service, demand(limited))
        clock.advance(0.001)
        return [full[-1], early, await outcome(service, demand(limited))]

    refusal, early, on_time = asyncio.run(scenario())
    assert isinstance(refusal, AdmissionRefused) and refusal.retry_after_s == 8.572
    assert isinstance(early, AdmissionRefused) and isinstance(on_time, Ticket)


def test_it_admits_exactly_rpm_across_two_engines_with_their_own_redis_connections(clock: Clock, steady_redis: None):
    limited = subject(rpm=10)

    async def twenty() -> list[Result]:
        return await outcomes(engine(clock), [demand(limited) for _ in range(20)])

    first, second = on_threads(twenty, twenty)
    assert len(admitted(first)) + len(admitted(second)) == 10


def test_it_refills_continuously_so_no_second_burst_passes_at_a_minute_boundary(backend: str, clock: Clock):
    limited = subject(rpm=10)
    service = engine(clock)

    async def scenario() -> tuple[int, int, int]:
        clock.advance(59.9)  # a fixed window that began at the start would reset 0.1 s from now
        burst = len(admitted(await outcomes(service, [demand(limited) for _ in range(10)])))
        clock.advance(0.2)
        after_boundary = len(admitted(await outcomes(service, [demand(limited) for _ in range(10)])))
        clock.advance(30)  # half a minute refills half the limit
        return burst, after_boundary, len(admitted(await outcomes(service, [demand(limited) for _ in range(10)])))

    assert asyncio.run(scenario()) == (10, 0, 5)


def test_it_admits_two_of_five_concurrent_40_token_demands_at_tpm_100_and_refunds_unused_tokens(
    backend: str, clock: Clock
):
    limited = subject(tpm=100)
    service = engine(clock)

    async def scenario() -> tuple[list[Result], list[Result]]:
        first = await outcomes(service, [demand(limited, tokens=40) for _ in range(5)])
        for ticket in admitted(first):
            await service.settle(ticket, tokens=10, cost_usd=Decimal(0))
        return first, await outcomes(service, [demand(limited, tokens=40) for _ in range(3)])

    first, after_refund = asyncio.run(scenario())
    assert len(admitted(first)) == 2
    assert {refusal.limit for refusal in refused(first)} == {"tpm"}
    # 20 tokens used: 80 left, room for two more of 40, not three.
    assert len(admitted(after_refund)) == 2
    assert refused(after_refund)[0].retry_after_s == pytest.approx(24.0)  # 40 tokens at 100 per minute


def test_it_has_no_token_floor_so_a_small_limit_admits_its_first_request(backend: str, clock: Clock):
    small, tiny = subject(tpm=50), subject(tpm=1)

    async def scenario() -> list[Result]:
        service = engine(clock)
        return [await outcome(service, demand(small, tokens=50)), await outcome(service, demand(tiny, tokens=1))]

    assert all(isinstance(result, Ticket) for result in asyncio.run(scenario()))


def test_it_refuses_a_demand_larger_than_the_tpm_limit_at_once_as_too_large_and_takes_nothing(
    backend: str, clock: Clock
):
    key, tenant = subject(rpm=5, tpm=1000), subject("tenant", tpm=100)
    service = engine(clock)

    async def scenario() -> tuple[Result, Result]:
        too_large = await outcome(service, demand(key, tenant, tokens=101))
        return too_large, await outcome(service, demand(key, tenant, tokens=100))

    too_large, fits = asyncio.run(scenario())
    assert isinstance(too_large, AdmissionRefused)
    assert (too_large.reason, too_large.limit, too_large.subject, too_large.retry_after_s) == (
        "rate_limit", "too_large", tenant, None)
    assert "101 tokens" in too_large.message and "limit of 100 tokens per minute" in too_large.message
    assert isinstance(fits, Ticket)
    assert fits.requests is not None and fits.requests.remaining == 4  # the refused demand took no request


def test_it_charges_tokens_reported_beyond_the_reservation(backend: str, clock: Clock):
    limited = subject(tpm=100)
    service = engine(clock)

    async def scenario() -> Result:
        ticket = await service.admit(demand(limited, tokens=10))
        await service.settle(ticket, tokens=90, cost_usd=Decimal(0))
        return await outcome(service, demand(limited, tokens=20))

    refusal = asyncio.run(scenario())
    assert isinstance(refusal, AdmissionRefused) and refusal.limit == "tpm"
    assert refusal.retry_after_s == pytest.approx(6.0)  # 90 used: 10 left; 10 more take 6 s to refill


def test_it_gives_back_only_the_unused_tokens_the_bucket_has_not_drained_already(backend: str, clock: Clock):
    limited = subject(tpm=100)
    service = engine(clock)

    async def scenario() -> tuple[Result, Result]:
        early = await service.admit(demand(limited, tokens=50))
        clock.advance(30)  # 50 tokens drained: the early request's reservation has left the bucket
        await service.admit(demand(limited, tokens=50))
        await service.settle(early, tokens=0, cost_usd=Decimal(0))  # nothing left of it to give back
        return await outcome(service, demand(limited, tokens=51)), await outcome(service, demand(limited, tokens=50))

    too_many, fits = asyncio.run(scenario())
    assert isinstance(too_many, AdmissionRefused) and isinstance(fits, Ticket)


def test_it_never_has_more_than_max_parallel_tickets_unsettled_and_a_settlement_frees_one(backend: str, clock: Clock):
    limited = subject(max_parallel=3)
    service = engine(clock)

    async def scenario() -> list[int]:
        held = admitted(await outcomes(service, [demand(limited) for _ in range(10)]))
        counts = [len(held)]
        for _ in range(3):
            await service.settle(held.pop(), tokens=0, cost_usd=Decimal(0))
            held += admitted(await outcomes(service, [demand(limited) for _ in range(4)]))
            counts.append(len(held))
        return counts

    assert asyncio.run(scenario()) == [3, 3, 3, 3]


def test_it_holds_max_parallel_across_two_engines_and_estimates_a_one_second_retry(clock: Clock, steady_redis: None):
    limited = subject(max_parallel=3)

    async def twenty() -> list[Result]:
        return await outcomes(engine(clock), [demand(limited) for _ in range(20)])

    first, second = on_threads(twenty, twenty)
    assert len(admitted(first)) + len(admitted(second)) == 3
    assert {(refusal.limit, refusal.retry_after_s) for refusal in refused(first + second)} == {("max_parallel", 1.0)}


def test_it_reports_the_tightest_limit_across_key_and_tenant_for_the_headers(backend: str, clock: Clock):
    key, tenant = subject(rpm=10, tpm=1000), subject("tenant", rpm=5, tpm=5000)

    async def scenario() -> Ticket:
        return await engine(clock).admit(demand(key, tenant, tokens=100))

    ticket = asyncio.run(scenario())
    assert ticket.requests is not None and ticket.tokens is not None
    assert (ticket.requests.limit, ticket.requests.remaining, ticket.requests.reset_s) == (5, 4, 12.0)
    assert (ticket.tokens.limit, ticket.tokens.remaining, ticket.tokens.reset_s) == (1000, 900, 6.0)
    assert ticket.budget_remaining_usd is None


def test_it_takes_nothing_from_the_key_when_the_tenant_refuses(backend: str, clock: Clock):
    key, tenant = subject(rpm=10, max_parallel=2), subject("tenant", tpm=50)
    service = engine(clock)

    async def scenario() -> tuple[Result, Result]:
        await service.admit(demand(key, tenant, tokens=50))  # the tenant's tokens are all taken
        refusal = await outcome(service, demand(key, tenant, tokens=1))
        return refusal, await outcome(service, demand(key))

    refusal, after = asyncio.run(scenario())
    assert isinstance(refusal, AdmissionRefused) and (refusal.subject, refusal.limit) == (tenant, "tpm")
    # Had the refusal taken the key's second slot, this would be refused; and it is the key's second request.
    assert isinstance(after, Ticket) and after.requests is not None and after.requests.remaining == 8


def test_it_admits_at_once_without_any_limit(backend: str, clock: Clock):
    free = subject()

    async def scenario() -> Ticket:
        service = engine(clock)
        ticket = await service.admit(demand(free, tokens=10**9, cost="1000000"))
        await service.settle(ticket, tokens=0, cost_usd=Decimal(0))
        return ticket

    ticket = asyncio.run(scenario())
    assert (ticket.requests, ticket.tokens, ticket.budget_remaining_usd, ticket._hold) == (None, None, None, None)
