"""What routing adds to one request, in microseconds, per strategy and number of deployments.

Measures, in-process and without I/O, the routing work of a request whose first deployment answers:
finding the route (an exact name, and a pattern), ordering its deployments (the strategy), asking
the first one's breaker for admission, and recording the outcome (health counters and pybreaker's
state machine). That is everything routing does on the hot path for a healthy provider; Redis is
only touched by the background refresh and on failures.

    .venv/bin/python bench/routing.py [--requests 20000]
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
os.environ.pop("REDIS_URL", None)  # in-process backends: what the hot path does for a healthy provider

import django  # noqa: E402

django.setup()

from apps.providers.contracts import Upstream  # noqa: E402
from apps.routing.attempts import Attempt  # noqa: E402
from apps.routing.prices import Prices  # noqa: E402
from apps.routing.route_header import attempts_record, route_header  # noqa: E402
from apps.routing.shared_state import SharedState  # noqa: E402
from apps.routing.strategies import STRATEGIES, RequestShape, order_targets  # noqa: E402
from apps.routing.table import ModelRoute, RoutingTable, Target  # noqa: E402


def targets(count: int) -> tuple[Target, ...]:
    return tuple(
        Target(
            deployment_id=index, upstream=Upstream(index, f"provider-{index}", "openai", "http://x/v1", "", {}, 60),
            upstream_model=f"model-{index}", priority=index, weight=index + 1,
            prices=Prices(Decimal("0.15") * (index + 1), Decimal("0.60"), Decimal("0.075"), Decimal("0.1875")),
        )
        for index in range(count)
    )


async def per_request_us(strategy: str, size: int, requests: int, *, pattern: bool) -> float:
    state = SharedState()
    route = ModelRoute(name="bench-*" if pattern else "bench", strategy=strategy, max_retries=2,
                       targets=targets(size), created=0)
    table = RoutingTable(routes={} if pattern else {"bench": route}, patterns=(route,) if pattern else (),
                         loaded_at=time.monotonic())
    for target in route.targets:  # some history, as a running gateway has
        state.health.record(target.deployment_id, ok=True, latency_ms=10.0 + target.deployment_id)
    shape = RequestShape.of({"max_tokens": 100}, 400)
    name = "bench-4o" if pattern else "bench"
    started = time.perf_counter()
    for _ in range(requests):
        found = table.find(name)
        assert found is not None
        first = order_targets(found, shape, state.health)[0]
        assert await state.breakers.admit(first, found.policy, trial_ttl_s=60)
        state.health.record(first.deployment_id, ok=True, latency_ms=12.0)
        await state.breakers.record(first, found.policy, failed=False)
        attempts = [Attempt(first, "ok", 12.0, model=name)]
        route_header(strategy, attempts)
        attempts_record(attempts)
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    requests = parser.parse_args().requests
    sizes = (2, 4, 8)
    print(f"routing work per request, µs (median of 3 runs of {requests} requests, one core)")
    print(f"{'strategy':<15}" + "".join(f"{f'{size} deployments':>16}" for size in sizes) + f"{'pattern, 4':>14}")
    for strategy in STRATEGIES:
        cells = [sorted(asyncio.run(per_request_us(strategy, size, requests, pattern=False)) for _ in range(3))[1]
                 for size in sizes]
        pattern = sorted(asyncio.run(per_request_us(strategy, 4, requests, pattern=True)) for _ in range(3))[1]
        print(f"{strategy:<15}" + "".join(f"{cell:>16.1f}" for cell in cells) + f"{pattern:>14.1f}")


if __name__ == "__main__":
    main()
