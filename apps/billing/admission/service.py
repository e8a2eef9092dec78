"""Admission: a limited request takes from its key's and tenant's limits before it runs, and settles after.

How to read it: ``admit()`` turns a demand into a plan (which limits, which budget periods) and asks
one backend: Redis, shared by every gateway process, when ``REDIS_URL`` is set and Redis answers;
this process's memory when it is unset; this process's share of each limit while Redis is away
(``apps.billing.admission.fallback``). ``settle()`` gives back what the request did not use, once,
on whichever backend admitted it. Postgres is the truth for spend: a budget period whose spend a
backend does not know is rebuilt from the ledger (``apps.billing.admission.ledger_spend``).

Races, and what bounds them (README, "Limits and budgets", publishes these):
- a rebuild runs while ledger rows of the period are still in a process's spool: those rows are
  missed until the period is next rebuilt; at most the spend of the last ``EDGE_LEDGER_FLUSH_INTERVAL_S``
  (longer only while Postgres refuses the spool's inserts);
- Redis loses its data while requests are in flight: their reservations are gone, so until they
  settle the budget does not hold their worst case; their settlement adds nothing to a spend Redis
  no longer knows (the ledger row is counted by the rebuild instead);
- a settlement that timed out and is sent again: if its reservation is gone by then, the period is
  rebuilt from the ledger rather than counted twice or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import weakref
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings

from apps.billing.admission import verdicts
from apps.billing.admission.backend import Outcome, Unseeded
from apps.billing.admission.contract import Demand, Ticket
from apps.billing.admission.fallback import Fallback
from apps.billing.admission.ledger_spend import SpendLoader
from apps.billing.admission.local_backend import LocalBackend
from apps.billing.admission.money import ledger_units, spend_units
from apps.billing.admission.plan import Check, Plan, Planner
from apps.billing.admission.redis_backend import SETTLE, RedisBackend, RedisHold
from apps.billing.limits import Subject
from edge_project.background import run_in_background
from edge_project.leases import lease_keeper
from edge_project.redis_clients import bounded_sync, redis_configured, redis_usable, report_redis_failure

logger = logging.getLogger(__name__)

_SEED_ATTEMPTS = 3  # admissions asked of Redis per demand while it keeps answering "unseeded"


def wall_ms() -> int:
    return int(time.time() * 1000)


class AdmissionService:
    """One per process (``admission`` below); tests make more, with their own clock and process id."""

    def __init__(self, *, clock: Callable[[], int] | None = None, process_id: str | None = None) -> None:
        self.clock = clock or wall_ms  # ms since the epoch: budget periods, and the in-process backends' time
        self.planner = Planner()
        self.spend = SpendLoader()
        self.shared = RedisBackend(clock=clock)  # no clock given: Redis' own
        self.local = LocalBackend(clock=self.clock, seed=self._ledger_spend)
        process_id = process_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.fallback = Fallback(shared=self.shared, spend=self.spend, clock=self.clock, process_id=process_id)
        self._upkeep: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary())
        self._upkept_loop: asyncio.AbstractEventLoop | None = None

    async def admit(self, demand: Demand) -> Ticket:
        """A ticket, or ``AdmissionRefused``; never another exception (Redis trouble falls back, see above)."""
        for subject in demand.subjects:
            if subject.limited:
                break
        else:
            return Ticket(demand.request_id, None, None, None)
        self.start()
        plan = self.planner.plan(demand, self.clock())
        if (check := plan.too_large()) is not None:
            raise verdicts.too_large(check, plan.tokens)
        outcome = await self._decide(plan)
        plan = outcome.plan or plan
        if not outcome.admitted:
            raise verdicts.refusal(plan, outcome)
        return verdicts.ticket(plan, outcome)

    async def _decide(self, plan: Plan) -> Outcome:
        if not redis_configured():
            return await self.local.admit(plan)
        if redis_usable():
            outcome = await self._admit_shared(plan)
            if outcome is not None:
                self.fallback.recovered()
                return outcome
        return await self.fallback.admit(plan)

    async def _admit_shared(self, plan: Plan) -> Outcome | None:
        try:
            for _ in range(_SEED_ATTEMPTS):
                result = await self.shared.admit(plan)
                if not isinstance(result, Unseeded):
                    break
                plan = await self._seed_shared(plan, result.indexes)
            else:
                return None
        except Exception as exc:  # a reply of an unexpected shape, a client bug: no request fails for it
            logger.exception("admission through Redis failed; this process enforces its share of the limits")
            report_redis_failure(exc)
            return None
        if result is None:
            return None
        result.plan = plan
        self.fallback.remember(plan, result)
        if isinstance(result.hold, RedisHold) and result.hold.leased:
            lease_keeper.hold(result.hold)
        return result

    async def _seed_shared(self, plan: Plan, indexes: tuple[int, ...]) -> Plan:
        """Seed each period Redis does not know from the ledger; one the ledger cannot tell is not enforced now."""
        for index in indexes:
            check = plan.checks[index]
            spent = await self.spend.load(check)
            if spent is None:
                plan = plan.without_budget(index)
            else:
                await self.shared.seed(check, ledger_units(spent))
        return plan

    async def _ledger_spend(self, check: Check, divisor: int) -> int | None:
        spent = await self.spend.load(check)
        return ledger_units(spent) if spent is not None else None

    async def settle(self, ticket: Ticket, *, tokens: int, cost_usd: Decimal) -> None:
        """Give back what the request did not use; once per ticket (later calls do nothing); never raises."""
        hold = ticket._hold
        if hold is None or hold.settled:
            return
        hold.settled = True
        try:
            tokens, cost = max(0, tokens), spend_units(cost_usd)
            if isinstance(hold, RedisHold):
                await self._settle_shared(hold, tokens, cost)
            elif hold.backend is self.fallback.backend:
                await self.fallback.settle(hold, tokens=tokens, cost_units=cost)
            else:
                await hold.backend.settle(hold, tokens=tokens, cost_units=cost)
        except Exception:
            logger.exception("admission settlement of %s failed", ticket.request_id)

    async def _settle_shared(self, hold: RedisHold, tokens: int, cost: int) -> None:
        lease_keeper.drop(hold)
        if not hold.changes(tokens, cost):
            return
        mode = "once"  # never sent: applying it later is safe whatever happened meanwhile
        if redis_usable():
            try:
                if await self.shared.settle(hold, tokens=tokens, cost_units=cost):
                    return
            except Exception as exc:
                report_redis_failure(exc)
            mode = "retry"  # sent, and perhaps applied before the reply was lost
        self.fallback.keep(self.shared.settle_call(hold, tokens=tokens, cost_units=cost, mode=mode,
                                                   spent_at=self.shared.now_ms()))

    def settle_later(self, ticket: Ticket, *, tokens: int, cost_usd: Decimal) -> None:
        """``settle()`` in the background, on the event loop that admitted the ticket (callable from any thread)."""
        hold = ticket._hold
        if hold is None or hold.settled:
            return
        work = self.settle(ticket, tokens=tokens, cost_usd=cost_usd)
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is hold.loop:
            run_in_background(work)
        elif not hold.loop.is_closed():
            asyncio.run_coroutine_threadsafe(work, hold.loop)
        else:  # its loop is gone: Redis leases expire by themselves, and in-process counters went with the loop
            work.close()
            logger.warning("admission ticket %s could not be settled: its event loop is closed", ticket.request_id)

    def count_spend(self, *, request_id: str, subjects: tuple[Subject, ...], cost_usd: Decimal) -> None:
        """Spend the ledger gained outside a request (an adjustment, made now): added to each budget's
        current period at once, as the period's next rebuild from the ledger would count it, so budgets and
        the ledger agree. Blocking (admin, commands). Where it cannot be counted now (Redis unreachable,
        or another process's memory without Redis), the period's next rebuild counts it."""
        demand = Demand(request_id, tuple(subject for subject in subjects if subject.budget is not None), 0, Decimal(0))
        if not demand.subjects or not cost_usd:
            return
        plan, cost = self.planner.plan(demand, self.clock()), ledger_units(cost_usd)
        if not redis_configured():
            self.local.add_spend(plan, cost)
            return
        keys, args = self.shared.spend_call(plan, cost)
        bounded_sync(lambda client: client.eval(SETTLE.text, len(keys), *keys, *args))

    def start(self) -> None:
        """Run this loop's upkeep (heartbeat, sending what Redis missed, pruning); cheap when it runs already."""
        loop = asyncio.get_running_loop()
        if loop is self._upkept_loop:
            return
        task = self._upkeep.get(loop)
        if task is None or task.done():
            self._upkeep[loop] = loop.create_task(self._keep_up(), name="admission-upkeep")
        self._upkept_loop = loop

    async def stop(self) -> None:
        """Stop this loop's upkeep and leave the processes Redis counts (at shutdown)."""
        task = self._upkeep.pop(asyncio.get_running_loop(), None)
        self._upkept_loop = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if redis_configured():
            await self.fallback.leave()

    async def _keep_up(self) -> None:
        beat_due = 0.0
        while True:
            try:
                if redis_usable():
                    if time.monotonic() >= beat_due:
                        await self.fallback.heartbeat()
                        beat_due = time.monotonic() + settings.EDGE_LEASE_S / 3
                    await self.fallback.send_kept()
                now = self.clock()
                self.local.prune(now)
                self.fallback.backend.prune(now)
            except Exception:
                logger.exception("admission upkeep failed")
            await asyncio.sleep(min(1.0, settings.EDGE_LEASE_S / 3))


admission = AdmissionService()


async def admit(demand: Demand) -> Ticket:
    """Admit ``demand`` against every limit and budget of its subjects (see ``AdmissionService.admit``)."""
    return await admission.admit(demand)


async def settle(ticket: Ticket, *, tokens: int, cost_usd: Decimal) -> None:
    await admission.settle(ticket, tokens=tokens, cost_usd=cost_usd)


def settle_later(ticket: Ticket, *, tokens: int, cost_usd: Decimal) -> None:
    admission.settle_later(ticket, tokens=tokens, cost_usd=cost_usd)
