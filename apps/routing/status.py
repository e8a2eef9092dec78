"""What admin shows about each deployment right now: breaker state, recent success rate, latency, TTFT.

Read from Redis (what every gateway process sees) in one pipeline for all the deployments asked
about, or from this process's own view when Redis is unconfigured or unavailable: admin is served by
a gateway process, so without Redis its view is the gateway's. No database queries.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from apps.routing.breakers import CLOSED, HALF_OPEN, OPEN, SharedBreakerState
from apps.routing.health import DeploymentHealth, merge
from apps.routing.models import BreakerOverride, Deployment
from apps.routing.shared_state import read_shared, shared_state, write_breaker_state
from edge_project.redis_clients import redis_usable


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    breaker: str
    health: DeploymentHealth

    def success_text(self) -> str:
        rate = self.health.success_rate
        return "no recent calls" if rate is None else f"{rate:.1%} of {self.health.calls:.0f}"

    def latency_text(self) -> str:
        return _milliseconds(self.health.latency_ms)

    def ttft_text(self) -> str:
        return _milliseconds(self.health.ttft_ms)


def _milliseconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def deployment_statuses(deployments: Iterable[Deployment]) -> dict[int, DeploymentStatus]:
    """Deployments must come with ``model__policy`` selected (for each breaker's reset timeout)."""
    rows = list(deployments)
    ids = [row.pk for row in rows]
    if redis_usable():
        breakers, counters = read_shared(ids)
        now = time.time()
        return {row.pk: DeploymentStatus(_state(row, breakers.get(row.pk), now), merge(counters.get(row.pk, []), now))
                for row in rows}
    return {row.pk: DeploymentStatus(_local_state(row), shared_state.health.view(row.pk)) for row in rows}


def _state(row: Deployment, shared: SharedBreakerState | None, now: float) -> str:
    if row.breaker_override != BreakerOverride.AUTO:
        return f"forced {row.breaker_override}"
    if shared is None or shared.state == CLOSED:
        return CLOSED
    if shared.state == OPEN and now >= shared.opened_at + row.model.policy.breaker_reset_s:
        return HALF_OPEN
    return shared.state


def _local_state(row: Deployment) -> str:
    if row.breaker_override != BreakerOverride.AUTO:
        return f"forced {row.breaker_override}"
    breaker = shared_state.breakers.breakers.get(row.pk)
    if breaker is None:
        return CLOSED
    return HALF_OPEN if breaker.trial_due() else breaker.state


def close_breakers(deployment_ids: Iterable[int]) -> None:
    """Close these breakers now, in every process (each adopts the newer state on its next refresh)."""
    closed = SharedBreakerState(CLOSED, 0.0, time.time())
    for deployment_id in deployment_ids:
        breaker = shared_state.breakers.breakers.get(deployment_id)
        if breaker is not None:
            breaker.adopt(closed)
        write_breaker_state(deployment_id, closed)
