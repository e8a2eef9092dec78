"""What the request pipeline and admission exchange: a demand in, a ticket or a refusal out.

The pipeline builds a ``Demand`` once its request is parsed and priced, awaits ``admit()`` and gets a
``Ticket`` (what admission took, and the quotas for the response headers) or an ``AdmissionRefused``.
Whatever happens to the request afterwards, it hands the ticket to ``settle()`` exactly once (a
second call does nothing), with what the request really used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from apps.billing.limits import Subject

if TYPE_CHECKING:
    from apps.billing.admission.backend import Hold

Reason = Literal["rate_limit", "budget"]
LimitName = Literal["rpm", "tpm", "max_parallel", "budget", "too_large"]


@dataclass(frozen=True, slots=True)
class Demand:
    """What one request asks of its subjects' limits before it runs.

    ``tokens`` and ``cost_usd`` below zero count as zero: a malformed request can never become a
    negative reservation.
    """

    request_id: str
    subjects: tuple[Subject, ...]  # KeyInfo.subjects; subjects with no limit and no budget are ignored
    tokens: int  # counted prompt tokens + the output cap: what tpm admits now
    cost_usd: Decimal  # the worst-case cost: what budgets reserve now (0: never refused by a budget)


@dataclass(frozen=True, slots=True)
class Quota:
    """One rate limit's state after this admission (or at a refusal), for OpenAI's x-ratelimit-* headers."""

    limit: int
    remaining: int  # whole requests (or tokens) that would be admitted now
    reset_s: float  # seconds until the limit is fully replenished


@dataclass(frozen=True, slots=True)
class Ticket:
    """What admission took; ``settle()`` gives back what the request did not use."""

    request_id: str
    requests: Quota | None  # the tightest rpm that applied (None: no rpm limit)
    tokens: Quota | None  # the tightest tpm that applied
    budget_remaining_usd: Decimal | None  # the tightest budget's remaining after this reservation
    # What exactly was taken where (backend, subjects, period keys, leases); None when nothing was.
    _hold: Hold | None = field(default=None, repr=False, compare=False)


class AdmissionRefused(Exception):
    """A limit or budget refused the demand, and nothing was taken from any counter.

    ``retry_after_s`` is exact for rpm and tpm (the demand fits at that moment if nothing else is
    admitted meanwhile), an estimate (1 s) for max_parallel, and None for a budget and for a demand
    that can never fit (``limit == "too_large"``: more tokens than the tpm limit itself).
    """

    def __init__(
        self,
        *,
        reason: Reason,
        limit: LimitName,
        subject: Subject,
        retry_after_s: float | None,
        message: str,
        requests: Quota | None = None,
        tokens: Quota | None = None,
        budget_remaining_usd: Decimal | None = None,
    ) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.limit: LimitName = limit
        self.subject = subject
        self.retry_after_s = retry_after_s
        self.message = message
        self.requests = requests
        self.tokens = tokens
        self.budget_remaining_usd = budget_remaining_usd


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A subject's budget in its current period, for admin. Without a budget: ``limit_usd`` and
    ``period`` are None and nothing is counted."""

    limit_usd: Decimal | None
    period: str | None  # day, week, month, total
    start: datetime | None  # the period's first instant (None: total)
    end: datetime | None  # the next period's first instant (None: total)
    spent_usd: Decimal
    reserved_usd: Decimal  # worst cases of requests in flight
    remaining_usd: Decimal | None  # limit − spent − reserved (negative when overspent)
    source: Literal["redis", "process", "ledger", "none"]  # where spent and reserved were read
