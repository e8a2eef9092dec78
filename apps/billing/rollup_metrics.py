"""Prometheus metrics of the rollups' agreement with the ledger, set by the verification task.

Registered in prometheus_client's default registry on import, so /metrics exports them (in
multiprocess mode too: the gauge keeps its most recent value across processes, ``mostrecent``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ROLLUP_DRIFT_USD = Gauge(
    "llm_rollup_drift_usd",
    "Sum of |ledger - rollups| spend over the tenant-hours that disagreed at the last verification.",
    multiprocess_mode="mostrecent",
)
ROLLUP_DRIFT_TOTAL = Counter(
    "edge_rollup_drift",  # exported as edge_rollup_drift_total
    "Tenant-hours found whose rollups do not sum to their ledger rows, by verification.",
)
ROLLUP_CHECKS_TOTAL = Counter("edge_rollup_checks", "Verifications of recent rollups against the ledger.")
