"""What the metrics add to one request, in microseconds: everything ``/metrics`` counts on the hot path.

Measures, in-process, the metric work of a successful request served by a provider: the connection
gauge up and down, its cache lookup, its overhead histogram (when its headers are stamped) and
``request_finished`` (the request, its duration, tokens, cost, tenant and its attempt). By default the
values are file-backed, as under uvicorn (prometheus_client's multiprocess mode, in a temporary
directory), and written out every 500 requests: the upkeep's flush each second, at 500 requests per
second per process, which is more often than under load. ``--in-memory`` measures the single-process
values for comparison.

    .venv/bin/python bench/metrics.py [--requests 50000] [--in-memory]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edge_project.settings.test")
os.environ.pop("REDIS_URL", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--in-memory", action="store_true", help="single-process values instead of files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        if not args.in_memory:
            from edge_project.metrics_dir import prepare_metrics_dir

            prepare_metrics_dir(Path(directory))  # before prometheus_client is imported, as asgi.py does
        import django

        django.setup()
        mode = "in memory" if args.in_memory else "file-backed (multiprocess)"
        print(f"metrics per request, {mode}: {per_request_us(args.requests):.2f} µs")


def per_request_us(requests: int) -> float:
    from apps.billing.keys import KeyInfo
    from apps.providers.contracts import Upstream, Usage
    from apps.proxy.exchange import Exchange
    from apps.proxy.metrics import observe
    from apps.proxy.metrics.upkeep import write_out
    from apps.routing.attempts import Attempt
    from apps.routing.prices import Prices
    from apps.routing.table import Target

    target = Target(deployment_id=1, upstream=Upstream(1, "bench-provider", "openai", "http://x/v1", "", {}, 60),
                    upstream_model="m", priority=1, weight=1,
                    prices=Prices(Decimal("0.15"), Decimal("0.60"), Decimal("0.075"), Decimal("0.1875")))
    key = KeyInfo(key_id=1, prefix="sk-edge-x", tenant_id=1, tenant_slug="bench", allowed_models=frozenset(),
                  expires_at=None)
    exchanges = [
        Exchange(endpoint="chat", key=key, route="bench-model", model="bench-model", usage=Usage(120, 80),
                 cost_usd=Decimal("0.0000660"), attempts=[Attempt(target, "ok", 12.5, model="bench-model")])
        for _ in range(min(requests, 1000))
    ]
    started = time.perf_counter()
    for index in range(requests):
        exchange = exchanges[index % len(exchanges)]
        observe.connection_opened()
        observe.cache_looked_up("miss", 0.00002, waited=False)
        observe.overhead_measured(0.21)
        observe.request_finished(exchange, status="ok", http_status=200, error_type="")
        observe.connection_closed()
        if index % 500 == 499:  # the upkeep's flush, as at 500 requests per second per process
            write_out()
    return (time.perf_counter() - started) / requests * 1e6


if __name__ == "__main__":
    main()
