"""From counters to what the client sees: the ticket's quotas, or the refusal and its message.

Both backends report raw counters (``CheckState``); every figure a client sees is derived here, once,
with the arithmetic of ``apps.billing.admission.rates``.
"""

from __future__ import annotations

from decimal import Decimal

from apps.billing.admission import rates
from apps.billing.admission.backend import BUDGET, MAX_PARALLEL, RPM, TPM, CheckState, Outcome
from apps.billing.admission.contract import AdmissionRefused, LimitName, Quota, Ticket
from apps.billing.admission.money import to_usd, usd_text
from apps.billing.admission.plan import Check, Plan
from apps.billing.limits import Subject

# No moment is known at which a slot frees up; clients are told to try again after this.
MAX_PARALLEL_RETRY_MS = 1000
_PER_PERIOD = {"day": "per day", "week": "per week", "month": "per month", "total": "in total"}
_Tightest = tuple[int, int, int]  # (remaining, -reset ms, limit): the least is the tightest


def ticket(plan: Plan, outcome: Outcome) -> Ticket:
    requests, tokens, budget = quotas(plan, outcome.states)
    return Ticket(plan.request_id, requests, tokens, budget, outcome.hold)


def quotas(plan: Plan, states: tuple[CheckState, ...]) -> tuple[Quota | None, Quota | None, Decimal | None]:
    """The tightest rpm and tpm (least remaining, then latest reset) and the least budget remaining."""
    requests: _Tightest | None = None
    tokens: _Tightest | None = None
    budget: int | None = None
    for check, state in zip(plan.checks, states, strict=True):
        if check.rpm is not None and state.requests_level is not None:
            requests = _tighter(requests, check.rpm, plan.divisor, state.requests_level)
        if check.tpm is not None and state.tokens_level is not None:
            tokens = _tighter(tokens, check.tpm, plan.divisor, state.tokens_level)
        left = _budget_left(check, state)
        if left is not None and (budget is None or left < budget):
            budget = left
    return _quota(requests), _quota(tokens), to_usd(budget) if budget is not None else None


def _tighter(current: _Tightest | None, limit: int, divisor: int, level: int) -> _Tightest:
    candidate = (rates.remaining(level, limit, divisor), -rates.reset_ms(level, limit), limit)
    return candidate if current is None or candidate < current else current


def _quota(tightest: _Tightest | None) -> Quota | None:
    if tightest is None:
        return None
    remaining, reset, limit = tightest
    return Quota(limit, remaining, -reset / 1000)


def _budget_left(check: Check, state: CheckState) -> int | None:
    if check.budget_units is None or state.spent_units is None:
        return None
    return check.budget_units - state.spent_units - (state.reserved_units or 0)


def refusal(plan: Plan, outcome: Outcome) -> AdmissionRefused:
    """A budget refusal wins (retrying cannot help); among rate limits, the one that frees up last."""
    requests, tokens, budget = quotas(plan, outcome.states)
    pairs = list(zip(plan.checks, outcome.states, strict=True))
    for check, state in pairs:
        if state.refused & BUDGET:
            return AdmissionRefused(
                reason="budget", limit="budget", subject=check.subject, retry_after_s=None,
                message=_budget_message(check, state, plan), requests=requests, tokens=tokens,
                budget_remaining_usd=budget,
            )
    waits = [wait for check, state in pairs for wait in _waits(plan, check, state)]
    retry, limit, check = max(waits, key=lambda wait: wait[0])
    return AdmissionRefused(
        reason="rate_limit", limit=limit, subject=check.subject, retry_after_s=retry / 1000,
        message=_rate_message(limit, check, plan.tokens, retry), requests=requests, tokens=tokens,
        budget_remaining_usd=budget,
    )


def _waits(plan: Plan, check: Check, state: CheckState) -> list[tuple[int, LimitName, Check]]:
    waits: list[tuple[int, LimitName, Check]] = []
    unit = rates.unit(plan.divisor)
    if state.refused & RPM and check.rpm is not None and state.requests_level is not None:
        waits.append((rates.retry_ms(state.requests_level, unit, check.rpm), "rpm", check))
    if state.refused & TPM and check.tpm is not None and state.tokens_level is not None:
        waits.append((rates.retry_ms(state.tokens_level, plan.tokens * unit, check.tpm), "tpm", check))
    if state.refused & MAX_PARALLEL:
        waits.append((MAX_PARALLEL_RETRY_MS, "max_parallel", check))
    return waits


def too_large(check: Check, tokens: int) -> AdmissionRefused:
    return AdmissionRefused(
        reason="rate_limit", limit="too_large", subject=check.subject, retry_after_s=None,
        message=f"Request too large for {_whose(check.subject)}: it needs up to {tokens} tokens (prompt plus "
                f"output cap), more than the limit of {check.tpm} tokens per minute.",
    )


def _whose(subject: Subject) -> str:
    return "this API key" if subject.kind == "key" else "this API key's tenant"


def _rate_message(limit: LimitName, check: Check, tokens: int, retry_ms: int) -> str:
    after = f"Retry after {retry_ms / 1000:g} s."
    if limit == "rpm":
        return f"Rate limit reached for {_whose(check.subject)}: {check.rpm} requests per minute. {after}"
    if limit == "tpm":
        return (f"Rate limit reached for {_whose(check.subject)}: {check.tpm} tokens per minute, and this request "
                f"needs up to {tokens}. {after}")
    return (f"Concurrency limit reached for {_whose(check.subject)}: at most {check.max_parallel} requests in "
            f"flight. {after}")


def _budget_message(check: Check, state: CheckState, plan: Plan) -> str:
    assert check.budget_units is not None and check.period is not None
    left = to_usd(_budget_left(check, state) or 0)
    return (f"Budget exhausted for {_whose(check.subject)}: {usd_text(to_usd(check.budget_units))} "
            f"{_PER_PERIOD[check.period.kind]}; {usd_text(max(left, Decimal(0)))} remains and this request may "
            f"cost up to {usd_text(to_usd(plan.cost_units))}.")
