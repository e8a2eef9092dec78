"""A subject's budget in its current period, for admin: as admission counts it, else as the ledger has it."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from apps.billing.admission.contract import BudgetStatus
from apps.billing.admission.ledger_spend import period_spend
from apps.billing.admission.money import ledger_units, to_usd
from apps.billing.admission.plan import Check
from apps.billing.admission.redis_backend import subject_keys
from apps.billing.admission.service import AdmissionService, admission
from apps.billing.limits import Subject
from edge_project.redis_clients import bounded_sync, redis_configured

Source = Literal["redis", "process", "ledger"]


def budget_status(subject: Subject, *, service: AdmissionService | None = None) -> BudgetStatus:
    """Blocking (admin pages, commands). Reserved is as last counted: leases that ran out since are
    given back at the period's next admission."""
    service = service or admission
    if subject.budget is None:
        return BudgetStatus(None, None, None, None, Decimal(0), Decimal(0), None, "none")
    check = service.planner.check(subject, service.clock())
    assert check.period is not None and check.budget_units is not None
    spent, reserved, source = _counted(service, check) or _ledger(check)
    return BudgetStatus(
        limit_usd=to_usd(check.budget_units), period=check.period.kind, start=check.period.start,
        end=check.period.end, spent_usd=to_usd(spent), reserved_usd=to_usd(reserved),
        remaining_usd=to_usd(check.budget_units - spent - reserved), source=source,
    )


def _ledger(check: Check) -> tuple[int, int, Source]:
    assert check.period is not None
    return ledger_units(period_spend(check.subject, check.period)), 0, "ledger"


def _counted(service: AdmissionService, check: Check) -> tuple[int, int, Source] | None:
    if not redis_configured():
        found = service.local.budget(check)
        return (found[0], found[1], "process") if found is not None else None
    counted = bounded_sync(lambda client: client.hmget(subject_keys(check)[2], ["spent", "reserved"]))
    spent, reserved = counted or (None, None)
    if spent is None:  # Redis unusable, or the period unknown to it
        return None
    return int(spent), int(reserved or 0), "redis"
