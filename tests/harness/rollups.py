"""The rollups summed from the ledger in one SQL statement per table (Postgres), for tests and bench data.

What the gateway's own rebuild (``edge_rollup --rebuild``, apps.billing) computes, written as SQL so
that ten million generated rows take seconds: each request row's cost split into its four meters as
apps.billing.pricing.cost_of prices them (cache hits cost nothing and carry no meter), adjustments
summed apart, UTC hour and day buckets.
"""

from __future__ import annotations

import time

# Each request row's cost split into its four meters, as apps.billing.pricing.cost_of prices them.
ROLLUP_SQL = """
INSERT INTO {table} (
    bucket, tenant_id, api_key_id, endpoint, public_model, provider, deployment_id, price_version_id,
    requests_ok, requests_error, requests_cancelled, adjustments, cache_hits, prompt_tokens, completion_tokens,
    cached_tokens, cache_write_tokens, cost_usd, adjustment_usd, input_cost_usd, cached_input_cost_usd,
    cache_write_cost_usd, output_cost_usd, cost_avoided_usd, latency_ms_sum, latency_count, ttft_ms_sum, ttft_count
)
SELECT date_trunc('{unit}', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', tenant_id, coalesce(api_key_id, 0),
       endpoint, public_model, provider, coalesce(deployment_id, 0), coalesce(price_version_id, 0),
       count(*) FILTER (WHERE kind = 'request' AND status = 'ok'),
       count(*) FILTER (WHERE kind = 'request' AND status = 'error'),
       count(*) FILTER (WHERE kind = 'request' AND status = 'cancelled'),
       count(*) FILTER (WHERE kind = 'adjustment'),
       count(*) FILTER (WHERE cache_status IN ('hit-l1', 'hit-l2')),
       sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cache_write_tokens),
       coalesce(sum(cost_usd) FILTER (WHERE kind = 'request'), 0),
       coalesce(sum(cost_usd) FILTER (WHERE kind = 'adjustment'), 0),
       {meter_input}, {meter_cached}, {meter_write}, {meter_output},
       sum(cost_avoided_usd),
       coalesce(sum(latency_ms) FILTER (WHERE kind = 'request'), 0), count(*) FILTER (WHERE kind = 'request'),
       coalesce(sum(ttft_ms), 0), count(ttft_ms)
FROM billing_ledgerentry
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""


def meter(tokens: str, price: str) -> str:
    """A meter's sum over the billed request rows (cache hits cost nothing, so they carry no meter)."""
    return (f"coalesce(sum(({tokens}) * coalesce({price}, 0) / 1000000) FILTER (WHERE kind = 'request' "
            "AND cost_usd <> 0), 0)")


def rebuild_rollups() -> list[tuple[str, int, float]]:
    """Empty both rollup tables and sum them again from the ledger; (table, rows, seconds) of each."""
    from django.db import connection

    meters = {
        "meter_input": meter("prompt_tokens - cached_tokens - cache_write_tokens", "input_usd_per_mtok"),
        "meter_cached": meter("cached_tokens", "cached_input_usd_per_mtok"),
        "meter_write": meter("cache_write_tokens", "cache_write_usd_per_mtok"),
        "meter_output": meter("completion_tokens", "output_usd_per_mtok"),
    }
    done = []
    with connection.cursor() as cursor:
        for table, unit in (("billing_hourlyrollup", "hour"), ("billing_dailyrollup", "day")):
            started = time.monotonic()
            cursor.execute(f"DELETE FROM {table}")
            cursor.execute(ROLLUP_SQL.format(table=table, unit=unit, **meters))
            done.append((table, cursor.rowcount, time.monotonic() - started))
    return done
