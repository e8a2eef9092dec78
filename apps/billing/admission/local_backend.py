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
        self._rates: dict[tuple[str, int, str], tuple[int, int, int]] = {}  # (kind, id, rpm|tpm) → (level, at, limit)
        self._slots: dict[tuple[str, int], int] = {}
        self._budgets: dict[tuple[str, int, str], BudgetState] = {}

    async def admit(self, plan: Plan) -> Outcome:
        plan = await self._seeded(plan)
        now = plan.now_ms
        with self._lock:
            states = tuple(self._inspect(check, plan, now) for check in plan.checks)
            if any(state.refused for state in states):
                return Outcome(False, now, states, plan=plan)
            levels = tuple(self._take(check, plan, state, now)
                           for check, state in zip(plan.checks, states, strict=True))
            budgets = tuple(self._budgets.get(_budget_key(check)) if check.period else None for check in plan.checks)
        return Outcome(True, now, states, LocalHold(self, plan, now, levels, budgets), plan=plan)

    async def _seeded(self, plan: Plan) -> Plan:
        """Seed every budget period this plan needs; a budget whose spend cannot be known is not enforced."""
        for index, check in enumerate(plan.checks):
            if check.period is None or _budget_key(check) in self._budgets:
                continue
            spent = await self._seed(check, plan.divisor)
            if spent is None:
                plan = plan.without_budget(index)
                continue
            with self._lock:
                self._budgets.setdefault(_budget_key(check), BudgetState(check.period, spent))
        return plan

    def _inspect(self, check: Check, plan: Plan, now: int) -> CheckState:
        state = CheckState()
        if check.rpm is not None:
            rate = rates.Rate(check.rpm, plan.divisor)
            state.requests_level = self._level(check, "rpm", now)
            if not rates.fits(state.requests_level, rate.unit, rate.capacity):
                state.refused |= RPM
        if check.tpm is not None:
            rate = rates.Rate(check.tpm, plan.divisor)
            state.tokens_level = self._level(check, "tpm", now)
            if not rates.fits(state.tokens_level, plan.tokens * rate.unit, rate.capacity):
                state.refused |= TPM
        if check.max_parallel is not None:
            state.in_flight = self._slots.get(_subject_key(check), 0)
            if state.in_flight >= max(1, check.max_parallel // plan.divisor):
                state.refused |= MAX_PARALLEL
        if check.budget_units is not None:
            budget = self._budgets[_budget_key(check)]
            state.spent_units, state.reserved_units = budget.spent, budget.reserved
            if plan.cost_units and check.budget_units - budget.spent - budget.reserved < plan.cost_units:
                state.refused |= BUDGET
        return state

    def _take(self, check: Check, plan: Plan, state: CheckState, now: int) -> int:
        """Take what ``state`` found room for; returns the tpm bucket's level after (0: no tpm)."""
        if check.rpm is not None and state.requests_level is not None:
            state.requests_level += rates.Rate(check.rpm, plan.divisor).unit
            self._rates[_rate_key(check, "rpm")] = (state.requests_level, now, check.rpm)
        if check.max_parallel is not None and state.in_flight is not None:
            state.in_flight += 1
            self._slots[_subject_key(check)] = state.in_flight
        if check.budget_units is not None:
            budget = self._budgets[_budget_key(check)]
            budget.reserved += plan.cost_units
            state.reserved_units = budget.reserved
        if check.tpm is None or state.tokens_level is None:
            return 0
        state.tokens_level += plan.tokens * rates.Rate(check.tpm, plan.divisor).unit
        self._rates[_rate_key(check, "tpm")] = (state.tokens_level, now, check.tpm)
        return state.tokens_level

    def _level(self, check: Check, kind: str, now: int) -> int:
        limit = check.rpm if kind == "rpm" else check.tpm
        assert limit is not None
        level, at, _ = self._rates.get(_rate_key(check, kind), (0, now, limit))
        return rates.drained(level, at, now, limit)

    async def settle(self, hold: Hold, *, tokens: int, cost_units: int) -> bool:
        assert isinstance(hold, LocalHold)
        plan, now = hold.plan, self._clock()
        with self._lock:
            for index, check in enumerate(plan.checks):
                if check.tpm is not None:
                    self._settle_tokens(check, hold, index, tokens, now)
                if check.max_parallel is not None:
                    self._release_slot(_subject_key(check))
                budget = hold.budgets[index]
                if budget is not None:
                    budget.reserved -= plan.cost_units
                    budget.spent += cost_units
        return True

    def _settle_tokens(self, check: Check, hold: LocalHold, index: int, tokens: int, now: int) -> None:
        assert check.tpm is not None
        unit = rates.Rate(check.tpm, hold.plan.divisor).unit
        excess = (hold.plan.tokens - tokens) * unit
        level = self._level(check, "tpm", now)
        if excess > 0:
            level -= rates.refund(excess, hold.token_levels[index], hold.admitted_ms, now, check.tpm)
        else:
            level = min(rates.MAX_LEVEL, level - excess)
        self._rates[_rate_key(check, "tpm")] = (max(0, level), now, check.tpm)

    def _release_slot(self, key: tuple[str, int]) -> None:
        left = self._slots.get(key, 0) - 1
        if left > 0:
            self._slots[key] = left
        else:
            self._slots.pop(key, None)

    def budget(self, check: Check) -> tuple[int, int] | None:
        """The period's (spent, reserved) as this process counts them, if it has counted them."""
        with self._lock:
            state = self._budgets.get(_budget_key(check))
            return (state.spent, state.reserved) if state is not None else None

    def forget_budgets(self) -> None:
        """Start every budget afresh at its next use (tickets in flight keep the states they reserved on)."""
        with self._lock:
            self._budgets.clear()

    def prune(self, now_ms: int) -> None:
        """Drop what no longer counts: drained buckets, and budget periods that ended with nothing reserved."""
        with self._lock:
            for key, (level, at, limit) in list(self._rates.items()):
                if rates.drained(level, at, now_ms, limit) == 0:
                    del self._rates[key]
            for budget_key, state in list(self._budgets.items()):
                if not state.period.holds(now_ms) and state.reserved == 0:
                    del self._budgets[budget_key]


def _subject_key(check: Check) -> tuple[str, int]:
    return (check.subject.kind, check.subject.id)


def _rate_key(check: Check, kind: str) -> tuple[str, int, str]:
    return (check.subject.kind, check.subject.id, kind)


def _budget_key(check: Check) -> tuple[str, int, str]:
    assert check.period is not None
    return (check.subject.kind, check.subject.id, check.period.key)
