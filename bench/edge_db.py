"""The benchmark's chores inside the gateway's database, run as a child with the gateway's environment.

    python bench/edge_db.py configure http://127.0.0.1:PORT [unlimited]   prints {"key": "sk-edge-..."}
    python bench/edge_db.py ledger                            prints {"total": n, "ok": n, ...}
    python bench/edge_db.py cache                             adds bench-cached: bench-model with the cache on

A child process, not Django inside bench/run.py, so the benchmark itself holds no connection to
the database it measures and always sees the same settings the gateway does.
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BENCH_MODEL = "bench-model"
CACHED_MODEL = "bench-cached"
UPSTREAM_MODEL = "mock-model"


def configure(upstream_url: str, *, limited: bool = True) -> dict[str, str]:
    """One provider (the fake), one model with prices, one tenant and its key.

    The key and its tenant carry rate limits and a budget far above anything a run reaches, so
    every request pays for admission (token counting, reservation, settlement) as a limited
    production key does; ``limited=False`` measures without them.
    """
    from apps.billing.models import ApiKey, Tenant
    from apps.billing.services import create_api_key
    from apps.providers.models import Provider
    from apps.routing.models import Deployment, PublicModel, RoutingPolicy

    provider = Provider(name="fake", kind="openai", base_url=f"{upstream_url}/v1", timeout_s=30.0)
    provider.set_api_key("sk-fake-upstream")
    provider.save()
    policy = RoutingPolicy.objects.create(name="bench")
    model = PublicModel.objects.create(name=BENCH_MODEL, policy=policy)
    Deployment.objects.create(
        model=model, provider=provider, upstream_model=UPSTREAM_MODEL,
        input_usd_per_mtok=Decimal("0.15"), output_usd_per_mtok=Decimal("0.60"),
    )
    tenant = Tenant.objects.create(slug="bench", name="Benchmark")
    key, raw_key = create_api_key(tenant=tenant, name="bench")
    if limited:
        limits = {"rpm": 10**9, "tpm": 2 * 10**9, "budget_usd": Decimal(10**9), "budget_period": "month"}
        Tenant.objects.filter(pk=tenant.pk).update(**limits)
        ApiKey.objects.filter(pk=key.pk).update(**limits, max_parallel=10**6)
    return {"key": raw_key}


def add_cached_model() -> dict[str, str]:
    """A second public model on the same deployment, under a policy that caches (bench/cache.py)."""
    from apps.routing.models import Deployment, PublicModel, RoutingPolicy

    policy = RoutingPolicy.objects.create(name="bench-cached", cache_enabled=True, cache_ttl_s=3600)
    model = PublicModel.objects.create(name=CACHED_MODEL, policy=policy)
    plain = Deployment.objects.get(model__name=BENCH_MODEL)
    Deployment.objects.create(
        model=model, provider=plain.provider, upstream_model=plain.upstream_model,
        input_usd_per_mtok=plain.input_usd_per_mtok, output_usd_per_mtok=plain.output_usd_per_mtok,
    )
    return {"model": CACHED_MODEL}


def ledger_counts() -> dict[str, int]:
    from django.db.models import Count

    from apps.billing.models import LedgerEntry

    counts = {row["status"]: row["n"] for row in LedgerEntry.objects.values("status").annotate(n=Count("id"))}
    return {"total": sum(counts.values()), **counts}


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edge_project.settings.base")
    import django

    django.setup()
    if argv[:1] == ["configure"] and len(argv) in (2, 3) and argv[2:] in ([], ["unlimited"]):
        print(json.dumps(configure(argv[1], limited=argv[2:] != ["unlimited"])))
    elif argv == ["cache"]:
        print(json.dumps(add_cached_model()))
    elif argv == ["ledger"]:
        print(json.dumps(ledger_counts()))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
