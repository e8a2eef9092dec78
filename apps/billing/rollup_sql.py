"""The rollups' measures as SQL over the ledger, for Postgres: what ``apps.billing.rollups.contributions``
adds per row, summed by the database (numeric is exact, so the two agree to the last digit).

SQLite has no decimal type (it sums floats), so there the same sums are made in Python, from the same
``contributions()`` the writers use (apps.billing.rollup_checks).
"""

from __future__ import annotations

from apps.billing.rollups import MEASURES

_REQUEST = "l.kind = 'request'"
_CACHED = "LEAST(l.cached_tokens, l.prompt_tokens)"
_WRITTEN = f"LEAST(l.cache_write_tokens, l.prompt_tokens - {_CACHED})"
_METERS = {
    "input_cost_usd": (f"l.prompt_tokens - {_CACHED} - {_WRITTEN}", "l.input_usd_per_mtok"),
    "cached_input_cost_usd": (_CACHED, "l.cached_input_usd_per_mtok"),
    "cache_write_cost_usd": (_WRITTEN, "l.cache_write_usd_per_mtok"),
}


def _meter(name: str) -> str:
    tokens, price = _METERS[name]
    return f"TRUNC(({tokens}) * COALESCE({price}, 0) * 0.000001, 10)"  # multiplying keeps numeric exact


_PER_ROW = {
    "requests_ok": (f"{_REQUEST} AND l.status = 'ok'", "1"),
    "requests_error": (f"{_REQUEST} AND l.status = 'error'", "1"),
    "requests_cancelled": (f"{_REQUEST} AND l.status = 'cancelled'", "1"),
    "adjustments": (f"NOT ({_REQUEST})", "1"),
    "cache_hits": (f"{_REQUEST} AND l.cache_status IN ('hit-l1', 'hit-l2')", "1"),
    "prompt_tokens": (_REQUEST, "l.prompt_tokens"),
    "completion_tokens": (_REQUEST, "l.completion_tokens"),
    "cached_tokens": (_REQUEST, "l.cached_tokens"),
    "cache_write_tokens": (_REQUEST, "l.cache_write_tokens"),
    "cost_usd": (_REQUEST, "l.cost_usd"),
    "adjustment_usd": (f"NOT ({_REQUEST})", "l.cost_usd"),
    **{name: (_REQUEST, _meter(name)) for name in _METERS},
    "output_cost_usd": (_REQUEST, f"l.cost_usd - {' - '.join(_meter(name) for name in _METERS)}"),
    "cost_avoided_usd": (_REQUEST, "l.cost_avoided_usd"),
    "latency_ms_sum": (_REQUEST, "l.latency_ms"),
    "latency_count": (_REQUEST, "1"),
    "ttft_ms_sum": (f"{_REQUEST} AND l.ttft_ms IS NOT NULL", "l.ttft_ms"),
    "ttft_count": (f"{_REQUEST} AND l.ttft_ms IS NOT NULL", "1"),
}
assert set(_PER_ROW) == set(MEASURES), "every rollup measure needs its SQL"

MEASURE_SQL = ", ".join(f"SUM(CASE WHEN {when} THEN {value} ELSE 0 END)" for when, value in
                        (_PER_ROW[name] for name in MEASURES))
DIMENSION_SQL = (
    "l.tenant_id, COALESCE(l.api_key_id, 0), l.endpoint, l.public_model, l.provider, COALESCE(l.deployment_id, 0), "
    "COALESCE(l.price_version_id, 0)"
)


def bucket_sql(period: str) -> str:
    """The row's hour or day, in UTC whatever the session's time zone."""
    assert period in ("hour", "day")
    return f"date_trunc('{period}', l.created_at, 'UTC')"
