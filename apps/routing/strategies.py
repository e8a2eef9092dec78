"""Strategies: the order in which a model's deployments are tried for one request.

Each takes the route, what the request looks like (for cost) and the health view (for latency and
reliability), and returns every deployment it would use, best first; the attempt loop walks the
list (skipping open breakers) until one answers. All are pure and cheap: no I/O, a few
microseconds for a handful of deployments (``bench/routing.py`` measures them).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.routing.health import DeploymentHealth, HealthBook
from apps.routing.table import ModelRoute, Target

EXPLORATION = 0.05  # least_latency: share of requests that try a random deployment first
DEFAULT_OUTPUT_TOKENS = 256  # cost: the output a request without max_tokens is assumed to ask for
BYTES_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class RequestShape:
    """What strategies know about the request: token estimates that cost no tokenizer run."""

    prompt_tokens: int = 0
    output_tokens: int = DEFAULT_OUTPUT_TOKENS
    stream: bool = False  # a stream's speed is its time to first token; a whole answer's, its latency

    @classmethod
    def of(cls, body: Mapping[str, Any], body_bytes: int) -> RequestShape:
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        output = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 0
        return cls(prompt_tokens=body_bytes // BYTES_PER_TOKEN, output_tokens=output or DEFAULT_OUTPUT_TOKENS)


Strategy = Callable[[ModelRoute, RequestShape, HealthBook], list[Target]]

_round_robin_counters: dict[str, Iterator[int]] = {}


def failover(route: ModelRoute, shape: RequestShape, health: HealthBook) -> list[Target]:
    """Priority order (the table keeps deployments sorted by priority, then id)."""
    return list(route.targets)


def round_robin(route: ModelRoute, shape: RequestShape, health: HealthBook) -> list[Target]:
    """Each request starts at the next deployment; the rest follow as fallbacks."""
    counter = _round_robin_counters.setdefault(route.key, itertools.count())
    start = next(counter) % len(route.targets)
    return [*route.targets[start:], *route.targets[:start]]


def weighted(route: ModelRoute, shape: RequestShape, health: HealthBook) -> list[Target]:
    """Random order, each pick proportional to weight among those not yet picked."""
    remaining = [target for target in route.targets if target.weight > 0]
    ordered = []
    while remaining:
        pick = random.choices(remaining, weights=[target.weight for target in remaining])[0]
        ordered.append(pick)
        remaining.remove(pick)
    return ordered


def least_latency(route: ModelRoute, shape: RequestShape, health: HealthBook) -> list[Target]:
    """Lowest latency moving average first (TTFT for a stream). A deployment with no recent calls
    counts as fastest, so new and recovered ones get measured; a few requests explore at random for
    the same reason."""
    ordered = sorted(route.targets, key=lambda target: _speed_ms(health.view(target.deployment_id), shape))
    if len(ordered) > 1 and random.random() < EXPLORATION:
        ordered.insert(0, ordered.pop(random.randrange(1, len(ordered))))
    return ordered


def estimated_cost(target: Target, shape: RequestShape) -> Decimal:
    prices = target.prices
    return shape.prompt_tokens * prices.input_usd_per_mtok + shape.output_tokens * prices.output_usd_per_mtok


def cost(route: ModelRoute, shape: RequestShape, health: HealthBook) -> list[Target]:
    """Cheapest for this request's estimated tokens first; priority breaks ties."""
    return sorted(route.targets, key=lambda target: (estimated_cost(target, shape), target.priority))


def hybrid(route: ModelRoute, shape: RequestShape, health: HealthBook) -> list[Target]:
    """Lowest weighted score first: cost, latency (TTFT for a stream) and unreliability, each scaled to
    0..1 across the route's deployments (unknown latency or reliability scores as the best, to get it
    measured)."""
    views = [health.view(target.deployment_id) for target in route.targets]
    costs = _scaled([float(estimated_cost(target, shape)) for target in route.targets])
    latencies = _scaled([_speed_ms(view, shape) for view in views])
    failures = _scaled([_unreliability(view) for view in views])
    cost_weight, latency_weight, reliability_weight = route.policy.hybrid_weights
    scores = {
        target.deployment_id: cost_weight * c + latency_weight * lat + reliability_weight * f
        for target, c, lat, f in zip(route.targets, costs, latencies, failures, strict=True)
    }
    return sorted(route.targets, key=lambda target: (scores[target.deployment_id], target.priority))


def _speed_ms(view: DeploymentHealth, shape: RequestShape) -> float:
    return (view.ttft_ms if shape.stream else view.latency_ms) or 0.0


def _unreliability(view: DeploymentHealth) -> float:
    return 0.0 if view.success_rate is None else 1.0 - view.success_rate


def _scaled(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    return [0.0] * len(values) if high - low < 1e-12 else [(value - low) / (high - low) for value in values]


STRATEGIES: dict[str, Strategy] = {
    "failover": failover, "round_robin": round_robin, "weighted": weighted,
    "least_latency": least_latency, "cost": cost, "hybrid": hybrid,
}


def order_targets(route: ModelRoute, shape: RequestShape, health: HealthBook) -> list[Target]:
    if not route.targets:
        return []
    return STRATEGIES.get(route.strategy, failover)(route, shape, health)
