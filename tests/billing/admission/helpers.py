"""Building blocks of the admission tests: engines, subjects and demands, and running engines side by side.

Engines are ``AdmissionService`` instances: each is what one gateway process runs. Two engines on two
threads, each with its own event loop, use two Redis connections, as two processes would.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from apps.billing.admission import AdmissionRefused, Demand, Ticket
from apps.billing.admission.service import AdmissionService
from apps.billing.limits import Budget, RateLimits, Subject
from apps.billing.models import ApiKey, LedgerEntry, Tenant
from tests.factories import make_key, make_tenant

T = TypeVar("T")
Result = Ticket | AdmissionRefused
_ids = itertools.count(10_000_000 + secrets.randbelow(1_000_000) * 100)


class Clock:
    """Milliseconds since the epoch, moved only by the test (it starts at the real time: Redis TTLs stay sane)."""

    def __init__(self) -> None:
        self.ms = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)

    def set(self, moment: datetime) -> None:
        self.ms = int(moment.timestamp() * 1000)


def engine(clock: Clock) -> AdmissionService:
    return AdmissionService(clock=clock, process_id=f"test-{secrets.token_hex(4)}")


def subject(
    kind: str = "key", *, rpm: int | None = None, tpm: int | None = None, max_parallel: int | None = None,
    budget: str | None = None, period: str = "month", timezone: str = "UTC", id: int | None = None,
    tenant_id: int | None = None,
) -> Subject:
    """A subject of its own (fresh ids: Redis keys of other tests never apply)."""
    subject_id = id if id is not None else next(_ids)
    limits = RateLimits(rpm=rpm, tpm=tpm, max_parallel=max_parallel)
    money = Budget(Decimal(budget), period, timezone) if budget is not None else None
    return Subject(kind, subject_id, tenant_id if tenant_id is not None else subject_id, limits, money)  # type: ignore[arg-type]


def demand(*subjects: Subject, tokens: int = 1, cost: str = "0") -> Demand:
    return Demand(f"req_{secrets.token_hex(8)}", subjects, tokens, Decimal(cost))


async def outcome(service: AdmissionService, wanted: Demand) -> Result:
    try:
        return await service.admit(wanted)
    except AdmissionRefused as refusal:
        return refusal


async def outcomes(service: AdmissionService, wanted: list[Demand]) -> list[Result]:
    """Admit every demand concurrently on this loop."""
    return list(await asyncio.gather(*(outcome(service, one) for one in wanted)))


def on_threads(*jobs: Callable[[], Awaitable[T]]) -> list[T]:
    """Run each job on its own thread and event loop, all released at once."""
    start = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def work(index: int, job: Callable[[], Awaitable[T]]) -> None:
        async def go() -> T:
            start.wait()
            return await job()

        try:
            results[index] = asyncio.run(go())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(index, job)) for index, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def admitted(results: list[Result]) -> list[Ticket]:
    return [result for result in results if isinstance(result, Ticket)]


def refused(results: list[Result]) -> list[AdmissionRefused]:
    return [result for result in results if isinstance(result, AdmissionRefused)]


def billed_key() -> tuple[Tenant, ApiKey]:
    """A tenant and key in the database, for tests whose budgets are rebuilt from ledger rows."""
    tenant = make_tenant()
    key, _ = make_key(tenant)
    return tenant, key


def ledger_row(tenant: Tenant, key: ApiKey | None, cost: str, at: datetime, *, kind: str = "request") -> LedgerEntry:
    return LedgerEntry.objects.create(
        request_id=f"req_{secrets.token_hex(12)}", kind=kind, tenant=tenant, api_key=key, status="ok",
        http_status=200, cost_usd=Decimal(cost), created_at=at,
    )
