"""A demand made concrete: which limits of which subjects apply, in which budget period, in integer units."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from apps.billing.admission.contract import Demand
from apps.billing.admission.money import reserve_units
from apps.billing.admission.periods import Period, PeriodCache
from apps.billing.limits import Subject

_MAX_CACHED = 100_000


@dataclass(frozen=True, slots=True)
class Check:
    """One limited subject's limits, as admissions in one budget period apply them (built once, shared)."""

    subject: Subject
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    budget_units: int | None  # the budget in 10^-10 USD; None: no budget (or not enforced this time)
    period: Period | None  # the budget's current period
    owner: tuple[str, int] = field(init=False)  # (kind, id): names the subject's counters in a process
    budget_key: tuple[str, int, str] | None = field(init=False)  # (kind, id, period key)

    def __post_init__(self) -> None:
        owner = (self.subject.kind, self.subject.id)
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "budget_key", (*owner, self.period.key) if self.period is not None else None)

    def without_budget(self) -> Check:
        return replace(self, budget_units=None, period=None)


@dataclass(slots=True)  # not frozen: one per request, and a frozen __init__ pays a setattr call per field
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


class Planner:
    """Plans for demands; each subject's check is built once per budget period (or when its limits change)."""

    def __init__(self) -> None:
        self.periods = PeriodCache()
        self._checks: dict[tuple[str, int], Check] = {}

    def plan(self, demand: Demand, now_ms: int) -> Plan:
        checks = tuple(self.check(subject, now_ms) for subject in demand.subjects if subject.limited)
        return Plan(demand.request_id, checks, max(0, demand.tokens), reserve_units(demand.cost_usd), now_ms)

    def check(self, subject: Subject, now_ms: int) -> Check:
        cached = self._checks.get((subject.kind, subject.id))
        # The same Subject object: the key cache hands out one per key until it reloads the key.
        if cached is not None and cached.subject is subject and (cached.period is None or cached.period.holds(now_ms)):
            return cached
        if len(self._checks) >= _MAX_CACHED:
            self._checks.clear()
        fresh = self._checks[(subject.kind, subject.id)] = check_of(subject, now_ms, self.periods)
        return fresh


def check_of(subject: Subject, now_ms: int, periods: PeriodCache) -> Check:
    limits, budget = subject.limits, subject.budget
    return Check(
        subject=subject, rpm=limits.rpm, tpm=limits.tpm, max_parallel=limits.max_parallel,
        budget_units=reserve_units(budget.usd) if budget is not None else None,
        period=periods.get(budget, now_ms) if budget is not None else None,
    )
