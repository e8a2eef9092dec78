"""What admission knows about a request's key and tenant: their rate limits and budgets, frozen.

Built once per key lookup (``apps.billing.keys``) and cached with the key, so admission reads no
database. A request is counted against every ``Subject`` that has a limit: its key and its tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from apps.billing.models import ApiKey, Limited, Tenant

SubjectKind = Literal["key", "tenant"]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Each None: unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None

    def __bool__(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.max_parallel is not None


@dataclass(frozen=True, slots=True)
class Budget:
    usd: Decimal
    period: str  # day, week, month or total (apps.billing.models.BudgetPeriod)
    timezone: str  # the tenant's IANA zone: where its days, weeks and months begin


@dataclass(frozen=True, slots=True)
class Subject:
    """One party a request is counted against."""

    kind: SubjectKind
    id: int
    tenant_id: int  # a key's and its tenant's counters live together (one Redis Cluster slot)
    limits: RateLimits
    budget: Budget | None

    @property
    def limited(self) -> bool:
        return bool(self.limits) or self.budget is not None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.id}"


def subjects_of(key: ApiKey) -> tuple[Subject, ...]:
    """The key's and its tenant's limits, those that have any (the tenant must be loaded with the key): a
    request of a key without limits, whose tenant has none either, asks admission nothing."""
    return tuple(subject for subject in (key_subject(key), tenant_subject(key.tenant)) if subject.limited)


def key_subject(key: ApiKey) -> Subject:
    tenant = key.tenant
    return Subject("key", key.pk, tenant.pk, _rate_limits(key), _budget(key, tenant.timezone))


def tenant_subject(tenant: Tenant) -> Subject:
    return Subject("tenant", tenant.pk, tenant.pk, _rate_limits(tenant), _budget(tenant, tenant.timezone))


def _rate_limits(row: Limited) -> RateLimits:
    return RateLimits(rpm=row.rpm, tpm=row.tpm, max_parallel=row.max_parallel)


def _budget(row: Limited, timezone: str) -> Budget | None:
    if row.budget_usd is None:
        return None
    return Budget(usd=row.budget_usd, period=row.budget_period, timezone=timezone)
