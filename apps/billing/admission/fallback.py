"""While Redis is unreachable: each process enforces its share of every limit, and Redis learns later what it missed.

A process never falls back to a limit's full value (N processes would admit N times the limit): it
enforces 1/N of it, N being the number of gateway processes alive at its last heartbeat in Redis
(1 if it never saw Redis). Rates drain at 1/N of the limit (``apps.billing.admission.rates``),
concurrency caps are ``max(1, cap // N)``, and a budget period allows 1/N of what remained when this
process last admitted against it in Redis (or, never having done so, of what the ledger says
remains). Rate buckets and slots outlive an outage (a flapping Redis cannot refill them); budget
shares are taken afresh at each outage from the latest figures.

What Redis missed is kept and sent when it answers again, each at most once: costs spent here, and
settlements of tickets admitted in Redis that could not reach it (``settle.lua``'s modes). Rate-limit
consumption during an outage is not sent back: Redis' buckets drained meanwhile as if idle.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import replace

from django.conf import settings

from apps.billing.admission.backend import Hold, Outcome
from apps.billing.admission.ledger_spend import SpendLoader
from apps.billing.admission.local_backend import LocalBackend
from apps.billing.admission.money import ledger_units
from apps.billing.admission.plan import Check, Plan
from apps.billing.admission.redis_backend import Call, RedisBackend
from edge_project.redis_clients import redis_usable

logger = logging.getLogger(__name__)

MAX_KEPT = 100_000  # settlements kept for Redis; beyond this the oldest are dropped (and logged)
MAX_REMEMBERED = 100_000  # budget periods whose remaining this process remembers
_BATCH = 500


class Fallback:
    def __init__(self, *, shared: RedisBackend, spend: SpendLoader, clock: Callable[[], int], process_id: str) -> None:
        self.shared = shared
        self.spend = spend
        self.process_id = process_id
        self.backend = LocalBackend(clock=clock, seed=self._share)
        self.processes = 1  # gateway processes alive at the last heartbeat (this one included)
        self._remaining: OrderedDict[tuple[str, int, str], int] = OrderedDict()  # budget period → left at last contact
        self._kept: deque[Call] = deque()
        self._active = False

    def remember(self, plan: Plan, outcome: Outcome) -> None:
        """Note what each budget had left after an admission in Redis: the next outage shares it out."""
        for check, state in zip(plan.checks, outcome.states, strict=True):
            if check.budget_units is None or check.period is None or state.spent_units is None:
                continue
            if len(self._remaining) >= MAX_REMEMBERED:
                self._remaining.popitem(last=False)
            left = check.budget_units - state.spent_units - (state.reserved_units or 0)
            self._remaining[(check.subject.kind, check.subject.id, check.period.key)] = left

    def recovered(self) -> None:
        self._active = False

    async def admit(self, plan: Plan) -> Outcome:
        if not self._active:
            self._active = True
            self.backend.forget_budgets()  # a new outage: shares of the latest figures
        return await self.backend.admit(replace(plan, divisor=self.processes))

    async def _share(self, check: Check, divisor: int) -> int | None:
        """The spend to start this budget period from, so that what is left is this process's share."""
        assert check.budget_units is not None and check.period is not None
        remaining = self._remaining.get((check.subject.kind, check.subject.id, check.period.key))
        if remaining is None:
            spent = await self.spend.load(check)
            if spent is None:
                return None
            remaining = check.budget_units - ledger_units(spent)
        return check.budget_units - remaining // divisor

    async def settle(self, hold: Hold, *, tokens: int, cost_units: int) -> None:
        await self.backend.settle(hold, tokens=tokens, cost_units=cost_units)
        if cost_units > 0 and any(check.period is not None for check in hold.plan.checks):
            self.keep(self.shared.spend_call(hold.plan, cost_units))

    def keep(self, call: Call) -> None:
        if len(self._kept) >= MAX_KEPT:
            dropped = self._kept.popleft()
            logger.error("admission: too many settlements waiting for Redis; dropped one for %s", dropped[0][0])
        self._kept.append(call)

    def kept(self) -> int:
        return len(self._kept)

    async def send_kept(self) -> None:
        """Send what Redis missed, in batches of one round trip each, while it answers."""
        while self._kept and redis_usable():
            batch = [self._kept.popleft() for _ in range(min(_BATCH, len(self._kept)))]
            if not await self.shared.replay(batch):
                self._kept.extendleft(reversed(batch))
                return

    async def heartbeat(self) -> None:
        alive = await self.shared.heartbeat(self.process_id, int(settings.EDGE_LEASE_S * 1000))
        if alive is not None:
            self.processes = max(1, alive)

    async def leave(self) -> None:
        await self.shared.leave(self.process_id)
