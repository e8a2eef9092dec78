"""A budget period's spend, rebuilt from the ledger: Postgres is the truth, Redis and memory only count along.

Read when a period's spend is not known yet: its first request since the gateway started (or since
Redis lost it). The sum covers every row of the subject in the period, adjustments included, by the
rows' ``created_at`` (when the gateway received the request), through the (tenant, created_at) and
(api_key, created_at) indexes, with a statement timeout: a slow ledger must not hold up requests.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum

from apps.billing.admission.periods import Period
from apps.billing.admission.plan import Check
from apps.billing.limits import Subject
from edge_project.db import release_connection

logger = logging.getLogger(__name__)


def period_spend(subject: Subject, period: Period) -> Decimal:
    """The subject's ledger spend in ``period`` (blocking; raises if the database fails or times out)."""
    from apps.billing.models import LedgerEntry

    rows = LedgerEntry.objects.filter(**{"api_key_id" if subject.kind == "key" else "tenant_id": subject.id})
    if period.start is not None and period.end is not None:
        rows = rows.filter(created_at__gte=period.start, created_at__lt=period.end)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            timeout_ms = int(settings.EDGE_BUDGET_REBUILD_TIMEOUT_S * 1000)
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [timeout_ms])
        total = rows.aggregate(total=Sum("cost_usd"))["total"]
    return total if total is not None else Decimal(0)


def _period_spend_off_loop(subject: Subject, period: Period) -> Decimal:
    try:
        return period_spend(subject, period)
    finally:
        release_connection()  # an executor thread never ends a request that would hand it back


class SpendLoader:
    """Rebuilds off the event loop, one query per period at a time however many requests need it."""

    def __init__(self) -> None:
        self._loading: dict[tuple[asyncio.AbstractEventLoop, str, int, str], asyncio.Future[Decimal | None]] = {}

    async def load(self, check: Check) -> Decimal | None:
        """The period's spend, or None when the ledger cannot tell (database down or too slow: logged)."""
        assert check.period is not None
        loop = asyncio.get_running_loop()
        key = (loop, check.subject.kind, check.subject.id, check.period.key)
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future = self._loading[key] = loop.create_future()
        try:
            spent: Decimal | None = await sync_to_async(_period_spend_off_loop, thread_sensitive=False)(
                check.subject, check.period)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception:
            logger.warning("budget spend of %s in %s could not be read from the ledger; not enforced for now",
                           check.subject.label, check.period.key, exc_info=True)
            spent = None
        finally:
            del self._loading[key]
        future.set_result(spent)
        return spent
