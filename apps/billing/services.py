"""The only ways to issue and revoke keys and to correct the ledger (admin and commands call these)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.billing.adjustments import COPIED, adjustment_row, count_adjustments
from apps.billing.keys import issue_key
from apps.billing.ledger_write import parameters, write_rows
from apps.billing.models import LIMITED_FIELDS, ApiKey, LedgerEntry, Tenant


def create_api_key(
    *, tenant: Tenant, name: str = "", allowed_models: list[str] | None = None, expires_at: datetime | None = None,
    rpm: int | None = None, tpm: int | None = None, max_parallel: int | None = None,
    budget_usd: Decimal | None = None, budget_period: str | None = None, reports_scope: bool = False,
) -> tuple[ApiKey, str]:
    """Store a new key's hash and return the raw key, which exists nowhere else: show it once.

    Limits and the budget left None are unlimited (``budget_period`` None: the column's default). A
    value its column refuses (an rpm of 0, a negative budget) raises ValidationError, naming the
    field, and nothing is stored. ``reports_scope`` lets the key read its tenant's usage and costs.
    """
    issued = issue_key()
    period = {"budget_period": budget_period} if budget_period is not None else {}
    key = ApiKey(
        tenant=tenant, name=name, prefix=issued.prefix, key_hash=issued.key_hash,
        allowed_models=sorted(set(allowed_models or [])), expires_at=expires_at,
        rpm=rpm, tpm=tpm, max_parallel=max_parallel, budget_usd=budget_usd, reports_scope=reports_scope, **period,
    )
    key.clean_fields(exclude=[field.name for field in ApiKey._meta.fields if field.name not in LIMITED_FIELDS])
    key.save()
    return key, issued.raw


def revoke_api_key(*, key: ApiKey) -> ApiKey:
    """Revoke at once in the database; gateway processes stop accepting it within EDGE_KEY_CACHE_TTL_S."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


@transaction.atomic
def record_adjustment(*, entry: LedgerEntry, cost_delta_usd: Decimal, note: str) -> LedgerEntry:
    """Correct a request's cost with a new entry; the original row is never changed. Once committed, the
    difference counts against the budgets of the request's key and tenant in their current periods."""
    if not note.strip():
        raise ValueError("an adjustment needs a note saying why")
    request = {name: getattr(entry, name) for name in ("request_id", *COPIED)}
    row = adjustment_row(request, amount_usd=cost_delta_usd, note=note.strip())
    write_rows([parameters(row)])
    transaction.on_commit(lambda: count_adjustments([row]))
    return LedgerEntry.objects.get(request_id=row["request_id"])
