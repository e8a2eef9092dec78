"""The ``/metrics`` body: every process's counted files added up, plus what is read at scrape time.

Breakers, provider health, Redis and budgets are shared state (Redis, else this process), so the
process answering the scrape reads them once and reports them as gauges: nothing on the request path
pays for them, and two workers can never disagree about them in one scrape.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from apps.billing.admission import budget_status
from apps.billing.limits import tenant_subject
from apps.billing.models import Tenant
from apps.proxy.health import check_redis
from apps.proxy.metrics.upkeep import write_out
from apps.routing.shared_state import shared_state
from apps.routing.table import routing_tables
from edge_project.db import DatabaseUnavailable, run_bounded
from edge_project.metrics_dir import ENVIRONMENT_VARIABLE, is_alive

# The gauge's values (0 closed, 1 open, 2 half-open); a provider shows the worst of its deployments'.
BREAKER_VALUES = {"closed": 0, "forced closed": 0, "open": 1, "forced open": 1, "half-open": 2}
WORST_FIRST = (1, 2, 0)


@dataclass(slots=True)
class Shared:
    """What the scrape reads once from shared state."""

    breakers: dict[str, set[int]] = field(default_factory=dict)  # provider → its deployments' breaker states
    redis_up: int | None = None  # None: no Redis configured
    budgets: list[tuple[str, Decimal, Decimal, Decimal]] = field(default_factory=list)  # slug, limit, spent, reserved


async def exposition() -> bytes:
    shared = Shared(breakers=await _breakers(), budgets=await _budgets())
    if settings.REDIS_URL:
        shared.redis_up = int((await asyncio.to_thread(check_redis))["status"] == "ok")
    write_out()  # this process's latest counts; the others' are at most upkeep.INTERVAL_S old
    return await asyncio.to_thread(_render, shared)  # reads every process's files


def _render(shared: Shared) -> bytes:
    registry = CollectorRegistry()
    directory = os.environ.get(ENVIRONMENT_VARIABLE)
    if directory:
        _forget_dead_processes(Path(directory))
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:  # one process (tests in-process, a management command): its own registry, process metrics too
        registry.register(_Everything())
    registry.register(_SharedCollector(shared))
    return generate_latest(registry)


def _forget_dead_processes(directory: Path) -> None:
    """Live gauges of a worker that is gone (uvicorn replaced it) must stop counting; counters stay."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not is_alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), str(directory))  # type: ignore[no-untyped-call]


class _Everything(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class _SharedCollector(Collector):
    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    def collect(self) -> Iterator[Metric]:
        states = GaugeMetricFamily("llm_provider_circuit_breaker_state", "Worst breaker state of a provider's "
                                   "deployments: 0 closed, 1 open, 2 half-open.", labels=("provider",))
        health = GaugeMetricFamily("llm_provider_health", "1 while some deployment of the provider has its "
                                   "breaker closed, else 0.", labels=("provider",))
        for provider, found in sorted(self.shared.breakers.items()):
            states.add_metric((provider,), next(value for value in WORST_FIRST if value in found))
            health.add_metric((provider,), int(0 in found))
        yield states
        yield health
        if self.shared.redis_up is not None:
            yield GaugeMetricFamily("llm_redis_up", "1 if Redis answered a PING during this scrape.",
                                    value=self.shared.redis_up)
        yield from _budget_families(self.shared.budgets)


def _budget_families(budgets: list[tuple[str, Decimal, Decimal, Decimal]]) -> Iterator[Metric]:
    families = [
        GaugeMetricFamily(f"llm_budget_{name}_usd", text, labels=("tenant",)) for name, text in (
            ("limit", "A tenant's budget for its current period."),
            ("spent", "Spent in the current budget period, as admission counts it."),
            ("reserved", "Reserved by requests in progress (their worst-case cost)."),
        )
    ]
    for slug, *values in budgets:
        for family, value in zip(families, values, strict=True):
            family.add_metric((slug,), float(value))
    yield from families


async def _breakers() -> dict[str, set[int]]:
    try:
        table = await routing_tables.current()
    except Exception:
        return {}  # the database is down and this process has no table: no breaker series this scrape
    found: dict[str, set[int]] = {}
    for route in (*table.routes.values(), *table.patterns):
        for target in route.targets:
            state = BREAKER_VALUES.get(shared_state.breakers.state_of(target), 0)
            found.setdefault(target.upstream.provider_name, set()).add(state)
    return found


async def _budgets() -> list[tuple[str, Decimal, Decimal, Decimal]]:
    try:
        return await run_bounded(_read_budgets)
    except DatabaseUnavailable:
        return []


def _read_budgets() -> list[tuple[str, Decimal, Decimal, Decimal]]:
    budgets = []
    for tenant in Tenant.objects.filter(is_active=True, budget_usd__isnull=False).order_by("slug"):
        status = budget_status(tenant_subject(tenant))
        if status.limit_usd is not None:
            budgets.append((tenant.slug, status.limit_usd, status.spent_usd, status.reserved_usd))
    return budgets
