"""Budget alerts: a key's or tenant's spend passing 50, 80, 100 % (EDGE_BUDGET_ALERT_THRESHOLDS) of its budget.

``send_budget_alerts()`` is what the scheduled task runs, every minute: it records each threshold
a subject has passed in its current budget period (``BudgetAlert``: once, by a unique constraint, so
runs may repeat and overlap), then delivers what is recorded and not yet delivered
(apps.billing.alert_delivery), at most EDGE_BUDGET_ALERT_ATTEMPTS times each.

Spend is admission's (``budget_status``): the figure the gateway enforces and reports in
``x-edge-budget-remaining-usd``, settled spend counted in Redis (or, without counters, rebuilt from
the ledger), in the subject's own periods (its tenant's time zone). Rollups lag the ledger spool and
are cut in UTC hours, which a budget day in Asia/Kolkata does not follow; they serve reports, not this.
Reservations of requests in flight are left out: an alert says what was spent, not what may be.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.billing.admission import budget_status
from apps.billing.admission.periods import period_of
from apps.billing.alert_delivery import deliver
from apps.billing.limits import Subject, key_subject, tenant_subject
from apps.billing.models import ApiKey, BudgetAlert, Tenant

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertRun:
    recorded: int  # thresholds newly passed
    delivered: int
    failed: int  # deliveries that failed this run (tried again next run, while attempts remain)


def thresholds() -> list[int]:
    """EDGE_BUDGET_ALERT_THRESHOLDS as whole percentages, ascending (the system check vouches for them)."""
    return sorted({int(value) for value in settings.EDGE_BUDGET_ALERT_THRESHOLDS})


def send_budget_alerts() -> AlertRun:
    recorded = sum(record_crossings(subject, tenant_id) for subject, tenant_id in budgeted_subjects())
    outcomes = [deliver_pending(alert_id) for alert_id in pending_alert_ids()]
    return AlertRun(recorded=recorded, delivered=outcomes.count(True), failed=outcomes.count(False))


def budgeted_subjects() -> Iterator[tuple[Subject, int]]:
    """Active tenants and keys that have a budget, with their tenant's id."""
    for tenant in Tenant.objects.filter(is_active=True, budget_usd__isnull=False):
        yield tenant_subject(tenant), tenant.pk
    for key in ApiKey.objects.active().filter(budget_usd__isnull=False).select_related("tenant"):
        yield key_subject(key), key.tenant_id


def record_crossings(subject: Subject, tenant_id: int) -> int:
    """Record the thresholds ``subject`` has passed in its current period; how many were new."""
    assert subject.budget is not None
    status = budget_status(subject)
    if status.limit_usd is None or status.limit_usd <= 0:
        return 0
    percent = status.spent_usd * 100 / status.limit_usd
    passed = [threshold for threshold in thresholds() if percent >= threshold]
    if not passed:
        return 0
    period = period_of(subject.budget, status.start or timezone.now()).key
    new = [threshold for threshold in passed
           if _record(subject, tenant_id, period, threshold, status.limit_usd, status.spent_usd)]
    if new:
        # Passed at once (a burst, or alerts just switched on): one message, for the highest.
        BudgetAlert.objects.filter(subject_kind=subject.kind, subject_id=subject.id, period=period,
                                   threshold_percent__in=new[:-1]).update(superseded=True)
        logger.info("budget alert: %s passed %s%% of its %s budget (%s)", subject.label, new[-1], period,
                    f"{status.spent_usd:f} of {status.limit_usd:f} USD")
    return len(new)


def _record(subject: Subject, tenant_id: int, period: str, threshold: int, budget: Decimal, spent: Decimal) -> bool:
    """Insert the (subject, period, threshold) row; False when it exists (an earlier or concurrent run)."""
    try:
        with transaction.atomic():
            BudgetAlert.objects.create(
                subject_kind=subject.kind, subject_id=subject.id, tenant_id=tenant_id, period=period,
                threshold_percent=threshold, budget_usd=budget, spent_usd=spent, crossed_at=timezone.now(),
            )
    except IntegrityError:
        return False
    return True


def pending_alert_ids() -> list[int]:
    return list(BudgetAlert.objects.filter(
        delivered_at__isnull=True, superseded=False, attempts__lt=settings.EDGE_BUDGET_ALERT_ATTEMPTS,
    ).order_by("crossed_at").values_list("pk", flat=True)[:100])


def deliver_pending(alert_id: int) -> bool | None:
    """Deliver one alert while holding its row (SKIP LOCKED: an overlapping run passes it by), so it is
    never sent twice; True: delivered, False: failed (tried again next run), None: someone else's."""
    with transaction.atomic():
        alert = (BudgetAlert.objects.select_for_update(skip_locked=True).select_related("tenant")
                 .filter(pk=alert_id, delivered_at__isnull=True).first())
        if alert is None:
            return None
        alert.attempts += 1
        error = deliver(alert)
        alert.delivered_at = timezone.now() if error is None else None
        alert.last_error = (error or "")[:500]
        alert.save(update_fields=["attempts", "delivered_at", "last_error"])
    if error is not None:
        logger.warning("budget alert %s not delivered (attempt %s of %s): %s", alert, alert.attempts,
                       settings.EDGE_BUDGET_ALERT_ATTEMPTS, error)
    return error is None
