"""Every metric the gateway exports, defined once: names, labels, buckets and multiprocess modes.

Counted per process in files (``edge_project.metrics_dir``), added up at each scrape. Labels are
bounded by configuration: ``provider`` is a configured provider's name ("none" where none was asked),
``model`` a configured model (a route's name, "unknown" for a request that named none of them),
``tenant`` a tenant's slug, ``error_type`` a ``Fault``. Nothing a client writes becomes a label.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
OVERHEAD_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
LOOKUP_BUCKETS_S = (0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
PM = ("provider", "model")

# Requests: every /v1/ request, whatever ended it (each authenticated one is a ledger row).
requests = Counter("llm_requests", "Requests served, by the provider that answered last.", PM)
successes = Counter("llm_requests_success", "Requests answered successfully.", PM)
errors = Counter("llm_requests_error", "Requests that failed, by whose fault (error_type).", (*PM, "error_type"))
duration = Histogram("llm_request_duration_seconds", "Time from a request's arrival to its end (a stream's last "
                     "byte).", PM, buckets=LATENCY_BUCKETS_S)
ttft = Histogram("llm_time_to_first_token_seconds", "Streams: time from arrival to the first text relayed.", PM,
                 buckets=LATENCY_BUCKETS_S)
overhead = Histogram("llm_gateway_overhead_seconds", "Time spent in the gateway itself, all waiting on providers "
                     "excluded (x-edge-overhead-ms).", buckets=OVERHEAD_BUCKETS_S)
refusals = Counter("llm_admission_refusals", "Requests refused by a limit (rate_limit, budget, max_cost, "
                   "auth_throttle).", ("limit",))
active = Gauge("llm_active_connections", "/v1/ requests in progress, streams until their last byte.",
               multiprocess_mode="livesum")

# Tokens and cost, as billed: the same usage and Decimal cost the ledger row gets.
tokens = Counter("llm_tokens", "Tokens billed, prompt and completion.", PM)
prompt_tokens = Counter("llm_tokens_prompt", "Prompt tokens billed.", PM)
completion_tokens = Counter("llm_tokens_completion", "Completion tokens billed.", PM)
# A gauge only to keep the name the dashboards of the original design read (a counter would gain "_total");
# it only ever grows, and "sum" keeps the counts of processes that ended, as a counter's files are kept.
cost_cents = Gauge("llm_cost_total_cents", "Cost billed in US cents (the ledger's cost_usd x 100); only grows.", PM,
                   multiprocess_mode="sum")

# Cache: a lookup asks L1, then (with Redis) L2; a miss in L1 is a lookup of L2.
cache_hits = Counter("llm_cache_hits", "Cache lookups answered, by tier.", ("tier",))
cache_misses = Counter("llm_cache_misses", "Cache lookups not answered, by tier.", ("tier",))
cache_lookup = Histogram("llm_cache_lookup_duration_seconds", "Time to answer or miss a lookup, by the tier that "
                         "decided it.", ("tier",), buckets=LOOKUP_BUCKETS_S)
cache_size = Gauge("llm_cache_size_bytes", "Bytes held by the cache (l1: every process's LRU added up).",
                   ("tier",), multiprocess_mode="livesum")

# Providers: one per attempt (retries and failovers are attempts too).
provider_requests = Counter("llm_provider_requests", "Attempts sent to a provider.", ("provider",))
provider_errors = Counter("llm_provider_errors", "Failed attempts, by whose fault (error_type).",
                          ("provider", "error_type"))
provider_duration = Histogram("llm_provider_request_duration_seconds", "An attempt's time (a stream's: to its "
                              "first batch).", ("provider",), buckets=LATENCY_BUCKETS_S)
attempts = Counter("llm_attempts", "Attempts by kind (first, retry, failover, fallback) and outcome (ok, or the "
                   "error_type).", ("provider", "kind", "outcome"))

# The ledger spool of each process (set by each process's upkeep, and before each scrape by the scraper).
spool_backlog = Gauge("llm_ledger_spool_backlog_rows", "Ledger rows spooled to disk and not yet committed.",
                      multiprocess_mode="livesum")
spool_oldest = Gauge("llm_ledger_spool_oldest_uncommitted_seconds", "Age of the oldest uncommitted ledger row.",
                     multiprocess_mode="livemax")
spool_bytes = Gauge("llm_ledger_spool_bytes", "Disk used by the spool directory (segments and quarantine).",
                    multiprocess_mode="livemax")

# Per tenant (slugs are bounded by configuration): what the budget dashboards add up.
tenant_tokens = Counter("llm_tenant_tokens", "Tokens billed, by tenant.", ("tenant",))
tenant_cost_cents = Counter("llm_tenant_cost_cents", "Cost billed in US cents, by tenant.", ("tenant",))
