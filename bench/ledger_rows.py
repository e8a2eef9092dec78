"""A big, realistic ledger for measuring admin and reports: N rows over ~3 months, loaded with COPY.

    .venv/bin/python bench/ledger_rows.py --database scale_10m --rows 10000000    # ~10 min here
    .venv/bin/python bench/ledger_rows.py --database scale_10m --drop             # give the disk back

A script, not a management command: it creates (and drops) whole databases, which no operator of a
gateway should find one tab-completion away from production. It runs Django itself against
``postgres://.../<database>`` (host from ``--server``), migrates it, adds tenants, keys, providers and
models, streams the rows through ``COPY ... FROM STDIN`` in the order a gateway appends them (by
time), then fills the hourly and daily rollups from the ledger in one ``INSERT ... SELECT`` per table
(the same sums a rebuild makes) and ANALYZEs.

The rows: 12 tenants of very different sizes, 120 keys, 5 providers, 7 models on 8 deployments with prices,
96 % ok / 3 % error / 1 % cancelled, 45 % streams, 12 % cache hits (free, with the spend they
avoided), Anthropic-style prompt-cache reads and writes, 0.1 % adjustments of earlier rows, and a
working-hours shape over the days. Costs are exact: prices with at most four decimals make every
part of a row's cost a whole number of 1e-10 USD, so the rollups' meters sum to the ledger's costs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER = "postgres://postgres@127.0.0.1:5432"
BATCH_ROWS = 50_000
COPY_ROWS = 1_000_000


@dataclass(frozen=True)
class Model:
    public: str
    provider: str
    upstream: str
    prices: tuple[int, int, int, int]  # input, output, cached input, cache write: 1e-4 USD per Mtok


MODELS = (
    Model("gpt-4o", "openai", "gpt-4o-2024-11-20", (25_000, 100_000, 12_500, 0)),
    Model("gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18", (1_500, 6_000, 750, 0)),
    Model("claude-sonnet", "anthropic", "claude-sonnet-4-5", (30_000, 150_000, 3_000, 37_500)),
    Model("claude-haiku", "anthropic", "claude-haiku-4-5", (10_000, 50_000, 1_000, 12_500)),
    Model("gemini-flash", "gemini", "gemini-2.5-flash", (3_000, 25_000, 750, 0)),
    Model("text-embedding-3-small", "openai", "text-embedding-3-small", (200, 0, 0, 0)),
    Model("gpt-4o", "azure", "gpt-4o", (25_000, 100_000, 12_500, 0)),
    Model("llama-70b", "vllm", "meta-llama/Llama-3.3-70B-Instruct", (0, 0, 0, 0)),
)
MODEL_WEIGHTS = (20, 35, 12, 10, 10, 8, 4, 1)
PROVIDERS = sorted({model.provider for model in MODELS})
ENDPOINTS = {"text-embedding-3-small": "embeddings", "claude-sonnet": "messages", "claude-haiku": "messages"}
COLUMNS = (
    "request_id", "kind", "adjusts_id", "note", "tenant_id", "api_key_id", "endpoint", "public_model", "provider",
    "deployment_id", "upstream_model", "stream", "status", "http_status", "error_type", "prompt_tokens",
    "completion_tokens", "cached_tokens", "usage_source", "input_usd_per_mtok", "output_usd_per_mtok",
    "cached_input_usd_per_mtok", "cost_usd", "latency_ms", "ttft_ms", "created_at", "cache_status",
    "cost_avoided_usd", "attempts", "cache_write_tokens", "cache_write_usd_per_mtok", "usage_note",
    "price_version_id",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="scale_10m", help="created if missing (default scale_10m)")
    parser.add_argument("--server", default=SERVER, help=f"Postgres server URL without a database (default {SERVER})")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=92, help="the rows end now and start this many days before")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--drop", action="store_true", help="drop the database and exit")
    args = parser.parse_args()
    if args.drop:
        return drop_database(args.server, args.database)
    create_database(args.server, args.database)
    setup_django(f"{args.server}/{args.database}")
    started = time.monotonic()
    load(rows=args.rows, days=args.days, seed=args.seed)
    print(f"done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


def admin_connection(server: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(f"{server}/postgres", autocommit=True)


def create_database(server: str, name: str) -> None:
    with admin_connection(server) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            sys.exit(f"database {name} exists: drop it first (--drop) or choose another --database")
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(server: str, name: str) -> int:
    with admin_connection(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"dropped {name}")
    return 0


def setup_django(database_url: str) -> None:
    sys.path.insert(0, str(REPO))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edge_project.settings.base")
    os.environ.pop("REDIS_URL", None)  # the loader needs no Redis, and must not touch anybody's
    import django

    django.setup()


def load(*, rows: int, days: int, seed: int) -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    rng = random.Random(seed)
    keys = make_tenants_and_keys(rng)
    deployments = make_models()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    copy_rows(rng, rows=rows, start=end - timedelta(days=days), end=end, keys=keys, deployments=deployments)
    fill_rollups()


def make_tenants_and_keys(rng: random.Random) -> list[tuple[int, int]]:
    """(tenant id, key id) pairs, each repeated by its share of the traffic: a few big tenants, a long tail."""
    from decimal import Decimal

    from apps.billing.models import Tenant
    from apps.billing.services import create_api_key

    weighted: list[tuple[int, int]] = []
    for number in range(12):
        tenant = Tenant.objects.create(slug=f"tenant-{number:02d}", name=f"Tenant {number}",
                                       budget_usd=Decimal(50_000), budget_period="month")
        share = max(1, 60 // (number + 1))  # Zipf-like: tenant 0 sends 60x what tenant 11 sends
        for key_number in range(10):
            key, _ = create_api_key(tenant=tenant, name=f"key {key_number}")
            weighted += [(tenant.pk, key.pk)] * (share * (10 - key_number))
    rng.shuffle(weighted)
    return weighted


def make_models() -> dict[tuple[str, str], int]:
    """Providers, public models and deployments as configured, so admin's filters offer their names."""
    from decimal import Decimal

    from apps.providers.models import Provider
    from apps.routing.models import Deployment, PublicModel, RoutingPolicy

    policy = RoutingPolicy.objects.create(name="bench-ledger")
    providers = {name: Provider.objects.create(name=name, kind="openai", base_url=f"https://{name}.invalid/v1")
                 for name in PROVIDERS}
    deployments: dict[tuple[str, str], int] = {}
    for model in MODELS:
        public, _ = PublicModel.objects.get_or_create(name=model.public, defaults={"policy": policy})
        inp, out, cached, write = (Decimal(price) / 10_000 for price in model.prices)
        deployment = Deployment.objects.create(
            model=public, provider=providers[model.provider], upstream_model=model.upstream,
            input_usd_per_mtok=inp, output_usd_per_mtok=out, cached_input_usd_per_mtok=cached,
            cache_write_usd_per_mtok=write,
        )
        deployments[(model.public, model.provider)] = deployment.pk
    return deployments


def copy_rows(rng: random.Random, *, rows: int, start: datetime, end: datetime, keys: list[tuple[int, int]],
              deployments: dict[tuple[str, str], int]) -> None:
    """One COPY (and transaction) per ``COPY_ROWS`` rows, retried on a lost connection: a Postgres restart
    by someone else costs the chunk in flight, not the hour already loaded."""
    span_s = (end - start).total_seconds()
    days = span_s / 86400
    moments = sorted(start.timestamp() + working_hours(rng, days) * span_s for _ in range(rows))
    earlier: list[str] = []
    started = time.monotonic()
    for first in range(0, rows, COPY_ROWS):
        last = min(first + COPY_ROWS, rows)
        chunk = [
            "".join(row_line(rng, index, moments[index], keys, deployments, earlier)
                    for index in range(batch, min(batch + BATCH_ROWS, last)))
            for batch in range(first, last, BATCH_ROWS)
        ]
        copy_with_retries(chunk)
        print(f"{last:>11,} rows  {time.monotonic() - started:5.0f} s", flush=True)


def copy_with_retries(chunk: list[str], attempts: int = 5) -> None:
    import psycopg
    from django.db import OperationalError, connection

    sql = f"COPY billing_ledgerentry ({', '.join(COLUMNS)}) FROM STDIN"
    for _ in range(attempts):
        try:
            with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:  # psycopg 3's COPY
                for text in chunk:
                    copy.write(text)
            return
        except (OperationalError, psycopg.OperationalError) as exc:  # psycopg's own, from its COPY object
            print(f"COPY failed ({exc}); again in 5 s", flush=True)
            with contextlib.suppress(Exception):  # the connection is gone either way
                connection.close()
            time.sleep(5)
    raise SystemExit(f"COPY failed {attempts} times")


def working_hours(rng: random.Random, days: float) -> float:
    """A fraction of the span, denser in working hours (08-19 UTC) and on five days of each seven."""
    while True:
        moment = rng.random()
        hour = (moment * days * 24) % 24
        weekday = int(moment * days) % 7
        weight = (1.0 if 8 <= hour < 19 else 0.25) * (1.0 if weekday < 5 else 0.4)
        if rng.random() < weight:
            return moment


def row_line(rng: random.Random, index: int, moment: float, keys: list[tuple[int, int]],
             deployments: dict[tuple[str, str], int], earlier: list[str]) -> str:
    tenant_id, key_id = keys[index % len(keys)] if index % 7 else rng.choice(keys)
    created = datetime.fromtimestamp(moment, UTC).isoformat()
    request_id = f"req_{index:012d}{rng.getrandbits(32):08x}"
    if earlier and rng.random() < 0.001:
        return adjustment_line(rng, index, created, tenant_id, key_id, rng.choice(earlier))
    model = rng.choices(MODELS, MODEL_WEIGHTS)[0]
    if len(earlier) < 10_000 and rng.random() < 0.01:
        earlier.append(request_id)
    roll = rng.random()
    status, http, error = ("ok", 200, "") if roll < 0.96 else (
        ("error", rng.choice((429, 500, 502, 504)), "upstream_error") if roll < 0.99 else ("cancelled", 499, ""))
    stream = model.public != "text-embedding-3-small" and rng.random() < 0.45
    cache = rng.choices(("", "miss", "hit-l1", "hit-l2", "bypass"), (40, 44, 8, 4, 4))[0]
    prompt = int(rng.lognormvariate(6.5, 1.2)) + 1
    completion = 0 if model.public == "text-embedding-3-small" else int(rng.lognormvariate(5.0, 1.0))
    cached = prompt // 2 if rng.random() < 0.2 else 0
    written = prompt // 4 if model.prices[3] and not cached and rng.random() < 0.1 else 0
    if status == "error":
        prompt = completion = cached = written = 0
    elif status == "cancelled":
        completion //= 3
    parts = ((prompt - cached - written) * model.prices[0] + completion * model.prices[1]
             + cached * model.prices[2] + written * model.prices[3])  # 1e-4 USD/Mtok x tokens = 1e-10 USD
    cost, avoided = (0, parts) if cache.startswith("hit") and status == "ok" else (parts, 0)
    usage = "none" if status == "error" else ("estimated" if status == "cancelled" else "provider")
    latency = 5 if cost == 0 and avoided else int(rng.lognormvariate(6.6, 0.7))
    ttft = str(min(latency, int(rng.lognormvariate(5.5, 0.6)))) if stream and status != "error" else r"\N"
    deployment = deployments[(model.public, model.provider)]
    attempts = f'[{{"deployment": {deployment}, "outcome": "{status}", "ms": {latency}}}]'
    prices = "\t".join(f"{price / 10_000:.6f}" for price in model.prices[:3])
    return "\t".join((
        request_id, "request", r"\N", "", str(tenant_id), str(key_id), ENDPOINTS.get(model.public, "chat.completions"),
        model.public, model.provider, str(deployment), model.upstream, "t" if stream else "f", status, str(http),
        error, str(prompt), str(completion), str(cached), usage, prices, usd(cost), str(latency), ttft, created, cache,
        usd(avoided), attempts, str(written), f"{model.prices[3] / 10_000:.6f}", "", str(deployment),
    )) + "\n"


def adjustment_line(rng: random.Random, index: int, created: str, tenant_id: int, key_id: int, adjusts: str) -> str:
    """A credit for an earlier request (its tenant and key are the generator's, not the original's: the
    rollups count an adjustment where it is recorded)."""
    amount = -rng.randint(1, 5_000_000_000)  # up to 0.5 USD back
    return "\t".join((
        f"adj_{index:012d}", "adjustment", adjusts, "credit for a failed stream", str(tenant_id), str(key_id),
        "chat.completions", "gpt-4o", "openai", r"\N", "gpt-4o-2024-11-20", "f", "ok", "200", "", "0", "0", "0", "none",
        r"\N", r"\N", r"\N", usd(amount), "0", r"\N", created, "", "0", "[]", "0", r"\N", "", r"\N",
    )) + "\n"


def usd(units: int) -> str:
    """1e-10 USD units as the ledger's decimal text."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**10)
    return f"{sign}{whole}.{fraction:010d}"


def fill_rollups() -> None:
    """The rollups rebuilt from the ledger (apps.billing.rollup_checks, as tests do), then VACUUM
    ANALYZE (autocommit, Django's default: it sets the visibility map that index-only scans need)."""
    from django.db import connection

    from tests.harness.rollups import rebuild_rollups

    for table, count, seconds in rebuild_rollups():
        print(f"{table}: {count:,} rows  {seconds:.0f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


if __name__ == "__main__":
    sys.exit(main())
