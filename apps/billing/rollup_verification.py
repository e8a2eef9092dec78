"""The scheduled check that recent rollups still sum to the ledger (the verification task calls it).

Each run compares the last EDGE_ROLLUP_VERIFY_WINDOW_S (whole hours, up to the current one) per tenant
and hour with ``verify_rollups`` (apps.billing.rollup_checks); every disagreement is one WARNING
line naming the tenant, the hour and each measure's two sums, counted in ``edge_rollup_drift_total``,
and ``llm_rollup_drift_usd`` is set to the spend they differ by (0 when they agree). The cure is
``manage.py edge_rollup --rebuild --from ... --to ...``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.billing.rollup_checks import Drift, verify_rollups
from apps.billing.rollup_metrics import ROLLUP_CHECKS_TOTAL, ROLLUP_DRIFT_TOTAL, ROLLUP_DRIFT_USD

logger = logging.getLogger(__name__)
SPEND_MEASURES = ("cost_usd", "adjustment_usd")


def verify_recent_rollups(*, window: timedelta | None = None) -> list[Drift]:
    """The drifts found over the recent window (empty when the rollups agree), logged and counted."""
    end = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - (window or timedelta(seconds=settings.EDGE_ROLLUP_VERIFY_WINDOW_S))
    drifts = verify_rollups(start=start, end=end)
    ROLLUP_CHECKS_TOTAL.inc()
    ROLLUP_DRIFT_USD.set(float(sum((spend_difference(drift.differences) for drift in drifts), Decimal(0))))
    for drift in drifts:
        ROLLUP_DRIFT_TOTAL.inc()
        logger.warning(
            "rollup drift: tenant %s, %s %s: %s (ledger, rollups); rebuild with manage.py edge_rollup --rebuild",
            drift.tenant_id, drift.period, drift.bucket.isoformat(),
            ", ".join(f"{name} {ledger} != {rolled}" for name, (ledger, rolled) in sorted(drift.differences.items())),
        )
    return drifts


def spend_difference(differences: dict[str, tuple[Any, Any]]) -> Decimal:
    return sum((abs(Decimal(ledger or 0) - Decimal(rolled or 0)) for name, (ledger, rolled) in differences.items()
                if name in SPEND_MEASURES), Decimal(0))
