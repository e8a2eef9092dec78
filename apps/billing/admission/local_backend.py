"""Admission counters in this process's memory: the whole store without Redis, and the fallback while it is away.

The same contract and arithmetic as the Redis backend, for this process alone. A budget period's
spend is seeded on first use by ``seed`` (from the ledger, so a restart of the gateway resets
nothing; or, in fallback, from this process's share of what Redis last said remained). Nothing here
has a lease: a process that dies takes its counters with it, and its tickets with them.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

from apps.billing.admission import rates
from apps.billing.admission.backend import BUDGET, MAX_PARALLEL, RPM, TPM, AdmissionBackend, CheckState, Hold, Outcome
from apps.billing.admission.periods import Period
from apps.billing.admission.plan import Check, Plan

Seed = Callable[[Check, int], Awaitable[int | None]]  # (check, divisor) → spend to start from; None: unknown
Bucket = tuple[int, int, int]  # level, when (ms), limit


class BudgetState:
    __slots__ = ("period", "reserved", "spent")

    def __init__(self, period: Period, spent: int) -> None:
        self.period = period
        self.spent = spent
        self.reserved = 0


class LocalHold(Hold):
    __slots__ = ("budgets",)

    def __init__(self, backend: LocalBackend, plan: Plan, admitted_ms: int, token_levels: tuple[int, ...],
                 budgets: tuple[BudgetState | None, ...]) -> None:
        super().__init__(backend, plan, admitted_ms, token_levels)
        self.budgets = budgets  # the very states reserved on, whatever the backend forgets meanwhile


class LocalBackend(AdmissionBackend):
    def __init__(self, *, clock: Callable[[], int], seed: Seed) -> None:
        self._clock = clock
        self._seed = seed
        # Event loops of several threads may share this process's counters: each decision holds the lock.
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], Bucket] = {}  # rpm buckets by subject
        self._tokens: dict[tuple[str, int], Bucket] = {}  # tpm buckets by subject
        self._slots: dict[tuple[str, int], int] = {}
        self._budgets: dict[tuple[str, int, str], BudgetState] = {}

    async def admit(self, plan: Plan) -> Outcome:
        for index, check in enumerate(plan.checks):
            if check.budget_key is not None and check.budget_key not in self._budgets:
                plan = await self._seeded(plan, index)
        now = plan.now_ms
        with self._lock:
            states = tuple(self._inspect(check, plan, now) for check in plan.checks)
            if any(state.refused for state in states):
                return Outcome(False, now, states, plan=plan)
            levels = tuple(self._take(check, plan, state, now)
                           for check, state in zip(plan.checks, states, strict=True))
            budgets = tuple(self._budgets[check.budget_key] if check.budget_key is not None else None
                            for check in plan.checks)
        return Outcome(True, now, states, LocalHold(self, plan, now, levels, budgets), plan=plan)

    async def _seeded(self, plan: Plan, index: int) -> Plan:
        """Seed the check's budget period; a budget whose spend cannot be known is not enforced this time."""
        check = plan.checks[index]
        assert check.budget_key is not None and check.period is not None
        spent = await self._seed(check, plan.divisor)
        if spent is None:
            return plan.without_budget(index)
        with self._lock:
            self._budgets.setdefault(check.budget_key, BudgetState(check.period, spent))
        return plan

    def _inspect(self, check: Check, plan: Plan, now: int) -> CheckState:
        state = CheckState()
        unit = rates.unit(plan.divisor)
        if check.rpm is not None:
            state.requests_level = _level(self._requests.get(check.owner), now)
            if not rates.fits(state.requests_level, unit, check.rpm):
                state.refused |= RPM
        if check.tpm is not None:
            state.tokens_level = _level(self._tokens.get(check.owner), now)
            if not rates.fits(state.tokens_level, plan.tokens * unit, check.tpm):
                state.refused |= TPM
        if check.max_parallel is not None:
            state.in_flight = self._slots.get(check.owner, 0)
            if state.in_flight >= max(1, check.max_parallel // plan.divisor):
                state.refused |= MAX_PARALLEL
        if check.budget_key is not None and check.budget_units is not None:
            budget = self._budgets[check.budget_key]
            state.spent_units, state.reserved_units = budget.spent, budget.reserved
            if plan.cost_units and check.budget_units - budget.spent - budget.reserved < plan.cost_units:
                state.refused |= BUDGET
        return state

    def _take(self, check: Check, plan: Plan, state: CheckState, now: int) -> int:
        """Take what ``state`` found room for; returns the tpm bucket's level after (0: no tpm)."""
        unit = rates.unit(plan.divisor)
        if check.rpm is not None and state.requests_level is not None:
            state.requests_level += unit
            self._requests[check.owner] = (state.requests_level, now, check.rpm)
        if check.max_parallel is not None and state.in_flight is not None:
            state.in_flight += 1
            self._slots[check.owner] = state.in_flight
        if check.budget_key is not None:
            budget = self._budgets[check.budget_key]
            budget.reserved += plan.cost_units
            state.reserved_units = budget.reserved
        if check.tpm is None or state.tokens_level is None:
            return 0
        state.tokens_level += plan.tokens * unit
        self._tokens[check.owner] = (state.tokens_level, now, check.tpm)
        return state.tokens_level

    async def settle(self, hold: Hold, *, tokens: int, cost_units: int) -> bool:
        assert isinstance(hold, LocalHold)
        plan, now = hold.plan, self._clock()
        with self._lock:
            for index, check in enumerate(plan.checks):
                if check.tpm is not None:
                    self._settle_tokens(check, hold, index, tokens, now)
                if check.max_parallel is not None:
                    self._release_slot(check.owner)
                budget = hold.budgets[index]
                if budget is not None:
                    budget.reserved -= plan.cost_units
                    budget.spent += cost_units
        return True

    def _settle_tokens(self, check: Check, hold: LocalHold, index: int, tokens: int, now: int) -> None:
        assert check.tpm is not None
        excess = (hold.plan.tokens - tokens) * rates.unit(hold.plan.divisor)
        level = _level(self._tokens.get(check.owner), now)
        if excess > 0:
            level -= rates.refund(excess, hold.token_levels[index], hold.admitted_ms, now, check.tpm)
        else:
            level = min(rates.MAX_LEVEL, level - excess)
        self._tokens[check.owner] = (max(0, level), now, check.tpm)

    def _release_slot(self, owner: tuple[str, int]) -> None:
        left = self._slots.get(owner, 0) - 1
        if left > 0:
            self._slots[owner] = left
        else:
            self._slots.pop(owner, None)

    def budget(self, check: Check) -> tuple[int, int] | None:
        """The period's (spent, reserved) as this process counts them, if it has counted them."""
        with self._lock:
            state = self._budgets.get(check.budget_key) if check.budget_key is not None else None
            return (state.spent, state.reserved) if state is not None else None

    def add_spend(self, plan: Plan, cost_units: int) -> None:
        """Spend made outside a request (a ledger adjustment), in each budget period this process counts;
        a period it does not count yet reads the ledger, which has it, when first used."""
        with self._lock:
            for check in plan.checks:
                state = self._budgets.get(check.budget_key) if check.budget_key is not None else None
                if state is not None:
                    state.spent += cost_units

    def forget_budgets(self) -> None:
        """Start every budget afresh at its next use (tickets in flight keep the states they reserved on)."""
        with self._lock:
            self._budgets.clear()

    def prune(self, now_ms: int) -> None:
        """Drop what no longer counts: drained buckets, and budget periods that ended with nothing reserved."""
        with self._lock:
            for buckets in (self._requests, self._tokens):
                for owner, bucket in list(buckets.items()):
                    if _level(bucket, now_ms) == 0:
                        del buckets[owner]
            for key, state in list(self._budgets.items()):
                if not state.period.holds(now_ms) and state.reserved == 0:
                    del self._budgets[key]


def _level(bucket: Bucket | None, now: int) -> int:
    if bucket is None:
        return 0
    level, at, limit = bucket
    return rates.drained(level, at, now, limit)
