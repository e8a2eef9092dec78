"""Budgets: worst cases reserved atomically against what remains, settled at the real cost, exact to the quantum,
and rebuilt from the ledger (Postgres is the truth)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.billing.admission import AdmissionRefused, Ticket, budget_status
from apps.billing.admission.service import AdmissionService
from apps.billing.limits import Subject
from tests.billing.admission.helpers import (
    Clock,
    Result,
    admitted,
    billed_key,
    demand,
    engine,
    ledger_row,
    on_threads,
    outcome,
    outcomes,
    refused,
    subject,
)

pytestmark = pytest.mark.usefixtures("transactional_db")  # spend is rebuilt from the ledger, on other threads


async def remaining(service: AdmissionService, limited: Subject) -> Decimal | None:
    """As admin reads it (blocking, so off the loop)."""
    return (await asyncio.to_thread(budget_status, limited, service=service)).remaining_usd


def test_it_admits_exactly_five_of_40_concurrent_demands_across_two_engines_when_the_budget_covers_five(
    clock: Clock, steady_redis: None
):
    limited = subject(budget="0.50")  # five worst cases of $0.10

    async def twenty() -> list[Result]:
        return await outcomes(engine(clock), [demand(limited, cost="0.10") for _ in range(20)])

    first, second = on_threads(twenty, twenty)
    assert len(admitted(first)) + len(admitted(second)) == 5
    assert {(refusal.reason, refusal.limit, refusal.retry_after_s) for refusal in refused(first + second)} == {
        ("budget", "budget", None)}


def test_it_keeps_remaining_equal_to_budget_minus_spent_minus_reserved_at_every_step(backend: str, clock: Clock):
    limited = subject(budget="0.50")
    service = engine(clock)

    async def scenario() -> list[Decimal | None]:
        results = await outcomes(service, [demand(limited, cost="0.10") for _ in range(40)])
        tickets = admitted(results)
        seen = [await remaining(service, limited), min(t.budget_remaining_usd or Decimal(0) for t in tickets)]
        for ticket, real in zip(tickets, ["0.01", "0.02", "0.0333333333", "0.10", "0"], strict=True):
            await service.settle(ticket, tokens=0, cost_usd=Decimal(real))
            seen.append(await remaining(service, limited))
        return seen

    # 5 reserved at $0.10: nothing left; then each settles at its real cost, freeing the difference.
    assert asyncio.run(scenario()) == [
        Decimal("0"), Decimal("0"), Decimal("0.09"), Decimal("0.17"), Decimal("0.2366666667"),
        Decimal("0.2366666667"), Decimal("0.3366666667")]


def test_it_frees_what_a_cheaper_request_did_not_spend_for_the_next_ones(backend: str, clock: Clock):
    limited = subject(budget="0.50")
    service = engine(clock)

    async def scenario() -> int:
        tickets = admitted(await outcomes(service, [demand(limited, cost="0.10") for _ in range(5)]))
        for ticket in tickets:
            await service.settle(ticket, tokens=0, cost_usd=Decimal("0.02"))  # $0.40 freed
        return len(admitted(await outcomes(service, [demand(limited, cost="0.10") for _ in range(10)])))

    assert asyncio.run(scenario()) == 4


def test_it_spends_a_25_dollar_budget_in_250_requests_of_10_cents_exactly(backend: str, clock: Clock):
    limited = subject(budget="25")
    service = engine(clock)

    async def scenario() -> tuple[Result, Result]:
        ticket: Result | None = None
        for _ in range(250):
            ticket = await service.admit(demand(limited, cost="0.10"))
            await service.settle(ticket, tokens=0, cost_usd=Decimal("0.10"))
        assert ticket is not None
        return ticket, await outcome(service, demand(limited, cost="0.0000000001"))

    last, after = asyncio.run(scenario())
    status = budget_status(limited, service=service)
    assert (status.spent_usd, status.reserved_usd, status.remaining_usd) == (Decimal("25"), Decimal(0), Decimal(0))
    assert str(status.spent_usd) == "25.0000000000"  # not 25.000000000000004
    assert isinstance(last, Ticket) and last.budget_remaining_usd == 0
    assert isinstance(after, AdmissionRefused) and after.reason == "budget"


def test_it_never_refuses_a_zero_cost_demand_even_when_the_budget_is_overspent(backend: str, clock: Clock):
    limited = subject(budget="1", rpm=100)
    service = engine(clock)

    async def scenario() -> tuple[Result, Result]:
        ticket = await service.admit(demand(limited, cost="1"))
        await service.settle(ticket, tokens=0, cost_usd=Decimal("1.5"))  # the provider reported more than the cap
        return await outcome(service, demand(limited, cost="0.01")), await outcome(service, demand(limited, cost="0"))

    paid, cache_hit = asyncio.run(scenario())
    assert isinstance(paid, AdmissionRefused) and paid.budget_remaining_usd == Decimal("-0.5")
    assert "$1.00 per month" in paid.message and "$0.00 remains" in paid.message and "$0.01" in paid.message
    assert isinstance(cache_hit, Ticket) and cache_hit.budget_remaining_usd == Decimal("-0.5")


def test_it_counts_a_second_settlement_of_a_ticket_not_at_all(backend: str, clock: Clock):
    limited = subject(budget="1", max_parallel=1)
    service = engine(clock)

    async def scenario() -> Result:
        ticket = await service.admit(demand(limited, cost="0.30"))
        await service.settle(ticket, tokens=0, cost_usd=Decimal("0.20"))
        await service.settle(ticket, tokens=0, cost_usd=Decimal("0.20"))
        service.settle_later(ticket, tokens=0, cost_usd=Decimal("0.20"))
        return await service.admit(demand(limited, cost="0"))

    after = asyncio.run(scenario())
    assert isinstance(after, Ticket) and after.budget_remaining_usd == Decimal("0.80")


def test_it_settles_later_on_the_admitting_loop_from_code_that_cannot_await(backend: str, clock: Clock):
    limited = subject(budget="1", max_parallel=1)
    service = engine(clock)

    async def scenario() -> Result:
        ticket = await service.admit(demand(limited, cost="0.30"))
        service.settle_later(ticket, tokens=0, cost_usd=Decimal("0.25"))
        for _ in range(100):  # the settlement runs in the background; the slot frees when it has
            result = await outcome(service, demand(limited))
            if isinstance(result, Ticket):
                return result
            await asyncio.sleep(0.01)
        return result

    after = asyncio.run(scenario())
    assert isinstance(after, Ticket) and after.budget_remaining_usd == Decimal("0.75")


def test_it_charges_a_cost_beyond_the_reservation_in_full(backend: str, clock: Clock):
    limited = subject(budget="1")
    service = engine(clock)

    async def scenario() -> None:
        ticket = await service.admit(demand(limited, cost="0.10"))
        await service.settle(ticket, tokens=0, cost_usd=Decimal("0.35"))

    asyncio.run(scenario())
    status = budget_status(limited, service=service)
    assert (status.spent_usd, status.reserved_usd) == (Decimal("0.35"), Decimal(0))
    assert status.remaining_usd == Decimal("0.65")


def test_it_refuses_on_the_budget_before_any_rate_limit(backend: str, clock: Clock):
    limited = subject(budget="0.10", rpm=1)
    service = engine(clock)

    async def scenario() -> Result:
        await service.admit(demand(limited, cost="0.10"))
        return await outcome(service, demand(limited, cost="0.10"))

    refusal = asyncio.run(scenario())
    assert isinstance(refusal, AdmissionRefused)
    assert (refusal.reason, refusal.limit, refusal.retry_after_s) == ("budget", "budget", None)


def test_it_rebuilds_a_period_from_the_ledger_so_a_restart_resets_nobody(backend: str, clock: Clock):
    tenant, key = billed_key()
    now = datetime(2026, 12, 15, 12, tzinfo=UTC)
    clock.set(now)
    ledger_row(tenant, key, "3.00", now - timedelta(days=3))
    ledger_row(tenant, key, "2.50", now - timedelta(hours=1))
    ledger_row(tenant, None, "-0.50", now - timedelta(hours=2), kind="adjustment")  # the tenant's, not the key's
    ledger_row(tenant, key, "100", datetime(2026, 11, 30, 23, 59, tzinfo=UTC))  # last month
    key_subject = subject(id=key.pk, tenant_id=tenant.pk, budget="10")
    tenant_subject = subject("tenant", id=tenant.pk, tenant_id=tenant.pk, budget="6")

    async def scenario() -> list[Result]:
        service = engine(clock)  # a process that has counted nothing yet
        return [await outcome(service, demand(key_subject, tenant_subject, cost=cost)) for cost in ("1.01", "1.00")]

    too_much, fits = asyncio.run(scenario())
    # The key spent 5.50 of 10; the tenant 5.00 of 6 (the adjustment counts): a dollar is left.
    assert isinstance(too_much, AdmissionRefused) and too_much.subject == tenant_subject
    assert too_much.budget_remaining_usd == Decimal("1")
    assert isinstance(fits, Ticket) and fits.budget_remaining_usd == Decimal("0")


def test_it_decides_budgets_beyond_what_a_double_holds_exactly(backend: str, clock: Clock):
    # 10^16 units of 10^-10 USD: past 2^53, where a double cannot tell the demand below from the budget.
    limited = subject(budget="1000000")
    service = engine(clock)

    async def scenario() -> tuple[Result, Result]:
        return (await outcome(service, demand(limited, cost="1000000.0000000001")),
                await outcome(service, demand(limited, cost="1000000")))

    over, exact = asyncio.run(scenario())
    assert isinstance(over, AdmissionRefused) and over.reason == "budget"
    assert isinstance(exact, Ticket) and exact.budget_remaining_usd == 0


def test_spend_counted_outside_a_request_reaches_the_period_at_once(backend: str, clock: Clock):
    limited = subject(budget="1.00")
    service = engine(clock)

    async def scenario() -> list[Decimal | None]:
        ticket = await service.admit(demand(limited, cost="0.10"))
        await service.settle(ticket, tokens=0, cost_usd=Decimal("0.10"))
        seen = [await remaining(service, limited)]
        await asyncio.to_thread(service.count_spend, request_id="adj_1", subjects=(limited,),
                                cost_usd=Decimal("0.35"))
        seen.append(await remaining(service, limited))
        await asyncio.to_thread(service.count_spend, request_id="adj_2", subjects=(limited,),
                                cost_usd=Decimal("-0.05"))
        seen.append(await remaining(service, limited))
        return seen

    assert asyncio.run(scenario()) == [Decimal("0.90"), Decimal("0.55"), Decimal("0.60")]
