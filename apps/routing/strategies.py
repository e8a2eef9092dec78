"""Strategies: the order in which a model's deployments are tried for one request."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator

from apps.routing.table import ModelRoute, Target

Strategy = Callable[[ModelRoute], list[Target]]

_round_robin_counters: dict[str, Iterator[int]] = {}


def failover(route: ModelRoute) -> list[Target]:
    """Priority order (the table keeps deployments sorted by priority, then id)."""
    return list(route.targets)


def round_robin(route: ModelRoute) -> list[Target]:
    """Each request starts at the next deployment; the rest follow as fallbacks."""
    counter = _round_robin_counters.setdefault(route.name, itertools.count())
    start = next(counter) % len(route.targets)
    return [*route.targets[start:], *route.targets[:start]]


def weighted(route: ModelRoute) -> list[Target]:
    """Random order, each pick proportional to weight among those not yet picked."""
    remaining = [target for target in route.targets if target.weight > 0]
    ordered = []
    while remaining:
        pick = random.choices(remaining, weights=[target.weight for target in remaining])[0]
        ordered.append(pick)
        remaining.remove(pick)
    return ordered


STRATEGIES: dict[str, Strategy] = {"failover": failover, "round_robin": round_robin, "weighted": weighted}


def order_targets(route: ModelRoute) -> list[Target]:
    if not route.targets:
        return []
    return STRATEGIES.get(route.strategy, failover)(route)
