"""A demand made concrete: which limits of which subjects apply, in which budget period, in integer units."""

from __future__ import annotations

from dataclasses import dataclass, replace

from apps.billing.admission.contract import Demand
from apps.billing.admission.money import reserve_units
from apps.billing.admission.periods import Period, PeriodCache
from apps.billing.limits import Subject


@dataclass(frozen=True, slots=True)
class Check:
    """One limited subject's limits, as this admission applies them."""

    subject: Subject
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    budget_units: int | None  # the budget in 10^-10 USD; None: no budget (or not enforced this time)
    period: Period | None  # the budget's current period

    def without_budget(self) -> Check:
        return replace(self, budget_units=None, period=None)


@dataclass(frozen=True, slots=True)
class Plan:
    request_id: str
    checks: tuple[Check, ...]
    tokens: int
    cost_units: int  # the worst case, in 10^-10 USD, rounded up
    now_ms: int  # this process's clock (or the test's): budget periods, and the in-process backend's time
    divisor: int = 1  # gateway processes sharing each limit (more than 1 only while Redis is unreachable)

    def too_large(self) -> Check | None:
        """A subject whose tpm is below the demand's tokens: the demand can never fit there."""
        for check in self.checks:
            if check.tpm is not None and self.tokens > check.tpm:
                return check
        return None

    def without_budget(self, index: int) -> Plan:
        checks = list(self.checks)
        checks[index] = checks[index].without_budget()
        return replace(self, checks=tuple(checks))


def make_plan(demand: Demand, now_ms: int, periods: PeriodCache) -> Plan:
    checks = tuple(check_of(subject, now_ms, periods) for subject in demand.subjects if subject.limited)
    return Plan(demand.request_id, checks, max(0, demand.tokens), reserve_units(demand.cost_usd), now_ms)


def check_of(subject: Subject, now_ms: int, periods: PeriodCache) -> Check:
    limits, budget = subject.limits, subject.budget
    return Check(
        subject=subject, rpm=limits.rpm, tpm=limits.tpm, max_parallel=limits.max_parallel,
        budget_units=reserve_units(budget.usd) if budget is not None else None,
        period=periods.get(budget, now_ms) if budget is not None else None,
    )
