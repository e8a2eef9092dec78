"""What admission adds to one request: CPU microseconds per admit + settle, per backend.

Prints, per backend and concurrency, the CPU per request of admit + settle for a key without limits
(what the request costs anyway: a coroutine, and a task each when concurrent), with limits, and the
difference: what admission adds.

A key and its tenant both limited (rpm, tpm, max_parallel and a monthly budget): the benchmark
key's case. Measured in-process, as CPU time of this process (``time.process_time``), so Redis'
own work is not counted and neither is waiting: one request's share of the gateway's CPU. Budget
periods start from a spend of zero instead of a ledger query (a query happens once per period and
process, not per request). ``--redis URL`` measures the shared backend too (its keys are deleted
afterwards); without it, only the in-process backends and the unlimited path.

    .venv/bin/python bench/admission.py [--requests 20000] [--redis redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edge_project.settings.test")
os.environ["EDGE_REDIS_PREFIX"] = f"edge-bench:{os.getpid()}:"  # only this run's keys, deleted at the end

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from apps.billing.admission import Demand  # noqa: E402
from apps.billing.admission.plan import Check  # noqa: E402
from apps.billing.admission.service import AdmissionService  # noqa: E402
from apps.billing.limits import Budget, RateLimits, Subject  # noqa: E402

LIMITS = RateLimits(rpm=10**9, tpm=10**12, max_parallel=10**6)
BUDGET = Budget(Decimal("1000000000"), "month", "Europe/Berlin")
COST = Decimal("0.0012")


def subjects(limited: bool, tenant_id: int) -> tuple[Subject, ...]:
    if not limited:
        return (Subject("key", tenant_id, tenant_id, RateLimits(), None),
                Subject("tenant", tenant_id, tenant_id, RateLimits(), None))
    return (Subject("key", tenant_id, tenant_id, LIMITS, BUDGET),
            Subject("tenant", tenant_id, tenant_id, LIMITS, BUDGET))


async def no_ledger(check: Check) -> Decimal:
    return Decimal(0)


async def per_request_us(requests: int, *, limited: bool, concurrency: int, tenant_id: int) -> float:
    service = AdmissionService()
    service.spend.load = no_ledger  # type: ignore[method-assign]  # the hot path, not the once-a-period query
    who = subjects(limited, tenant_id)

    async def one(index: int) -> None:
        ticket = await service.admit(Demand(f"req_{index}", who, 1200, COST))
        await service.settle(ticket, tokens=900, cost_usd=COST)

    await one(-1)  # warm: the period seeded, scripts loaded, a connection open
    started = time.process_time()
    if concurrency == 1:
        for index in range(requests):
            await one(index)
    else:  # each request its own task, as in the gateway
        for first in range(0, requests, concurrency):
            await asyncio.gather(*(one(index) for index in range(first, min(first + concurrency, requests))))
    spent = time.process_time() - started
    await service.stop()
    return spent / requests * 1e6


def delete_keys(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{settings.EDGE_REDIS_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--redis", help="a Redis URL to measure the shared backend against (its keys are deleted)")
    options = parser.parse_args()
    settings.REDIS_URL = None  # the test settings default to the machine's Redis: not here
    backends = [("in-process", None)] + ([("Redis", options.redis)] if options.redis else [])
    print(f"{'backend':<12} {'requests':<14} {'µs no limit':>12} {'µs limited':>12} {'admission µs':>13}")
    try:
        for tenant_id, (backend, url) in enumerate(backends, start=1):
            settings.REDIS_URL = url
            for label, concurrency in (("one at a time", 1), ("50 at once", 50)):
                free, limited = (
                    asyncio.run(per_request_us(options.requests, limited=flag, concurrency=concurrency,
                                               tenant_id=tenant_id))
                    for flag in (False, True)
                )
                print(f"{backend:<12} {label:<14} {free:>12.1f} {limited:>12.1f} {limited - free:>13.1f}")
    finally:
        if options.redis:
            delete_keys(options.redis)


if __name__ == "__main__":
    main()
