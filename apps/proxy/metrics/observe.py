"""Counting a request's metrics on the hot path: once when it ends (``request_finished``, from
``Exchange.finish``), once for its cache lookup, its overhead when its headers are stamped, and the
connection gauge around it (``edge_project.lifespan``).

Each series' children are bound once per label set and kept (``Children``), each behind a tally, so
a request costs a few float additions and no label handling; ``tally.flush()`` writes them out. Every
label set is bounded by configuration (``families``), so the tables stay small.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from apps.providers.errors import Fault
from apps.proxy.faults import POLICY_CODES, fault_of
from apps.proxy.metrics import families as m
from apps.proxy.metrics.tally import HistogramTally, Tally
from apps.routing.attempts import Attempt
from edge_project.redis_clients import redis_configured

if TYPE_CHECKING:
    from apps.proxy.exchange import Exchange

NO_PROVIDER = "none"  # answered without a provider: a cache hit, or refused before one was asked
UNKNOWN_MODEL = "unknown"  # the request named no configured model (or /v1/models, which names none)
CANCELLED = "cancelled"  # the ledger's status of a request the client left
HUNDRED = Decimal(100)
T = TypeVar("T", Tally, HistogramTally)


@dataclass(frozen=True, slots=True)
class Series:
    """The children of one (provider, model)."""

    requests: Tally
    successes: Tally
    duration: HistogramTally
    ttft: HistogramTally
    tokens: Tally
    prompt: Tally
    completion: Tally
    cost_cents: Tally

    @classmethod
    def of(cls, labels: tuple[str, str]) -> Series:
        return cls(
            Tally(m.requests.labels(*labels)), Tally(m.successes.labels(*labels)),
            HistogramTally(m.duration.labels(*labels)), HistogramTally(m.ttft.labels(*labels)),
            Tally(m.tokens.labels(*labels)), Tally(m.prompt_tokens.labels(*labels)),
            Tally(m.completion_tokens.labels(*labels)), Tally(m.cost_cents.labels(*labels)),
        )


class Children(Generic[T]):
    """A family's children, each behind a tally, bound on first use of their labels and kept."""

    def __init__(self, family: Counter | Gauge | Histogram, tally: Callable[[Any], T]) -> None:
        self.family = family
        self.tally: Callable[[Any], T] = tally
        self.bound: dict[tuple[str, ...], T] = {}

    def __call__(self, *labels: str) -> T:
        child = self.bound.get(labels)
        if child is None:
            child = self.bound[labels] = self.tally(self.family.labels(*labels))
        return child


_series: dict[tuple[str, str], Series] = {}
_errors = Children(m.errors, Tally)
_refusals = Children(m.refusals, Tally)
_tenant_tokens = Children(m.tenant_tokens, Tally)
_tenant_cost = Children(m.tenant_cost_cents, Tally)
_provider_requests = Children(m.provider_requests, Tally)
_provider_duration = Children(m.provider_duration, HistogramTally)
_provider_errors = Children(m.provider_errors, Tally)
_attempts = Children(m.attempts, Tally)
_cache_hits = Children(m.cache_hits, Tally)
_cache_misses = Children(m.cache_misses, Tally)
_cache_lookup = Children(m.cache_lookup, HistogramTally)
_overhead = HistogramTally(m.overhead)
active_connections = 0  # this process's; the upkeep sets the gauge from it


def request_finished(exchange: Exchange, *, status: str, http_status: int, error_type: str) -> None:
    """Step 6's metrics: the request, its tokens and cost (the ledger row's), and each attempt."""
    attempts = exchange.attempts
    provider = attempts[-1].target.upstream.provider_name if attempts else NO_PROVIDER
    labels = (provider, exchange.route or UNKNOWN_MODEL)
    series = _series.get(labels) or _series.setdefault(labels, Series.of(labels))
    series.requests.add()
    if status == "ok":
        series.successes.add()
    else:
        _count_error(labels, status, http_status, error_type, attempts)
    series.duration.observe(time.perf_counter() - exchange.started)
    if exchange.ttft_ms is not None:
        series.ttft.observe(exchange.ttft_ms / 1000)
    if attempts:  # what providers were paid for; a cache hit's usage was paid when it was made
        usage = exchange.usage
        if usage.total_tokens:
            series.tokens.add(usage.total_tokens)
            series.prompt.add(usage.prompt_tokens)
            series.completion.add(usage.completion_tokens)
            _tenant_tokens(_tenant(exchange)).add(usage.total_tokens)
        _count_attempts(attempts)
    if exchange.cost_usd:
        cents = float(exchange.cost_usd * HUNDRED)  # the ledger's Decimal, made a float only here
        series.cost_cents.add(cents)
        _tenant_cost(_tenant(exchange)).add(cents)


def _tenant(exchange: Exchange) -> str:
    return exchange.key.tenant_slug if exchange.key is not None else ""


def _count_error(labels: tuple[str, str], status: str, http_status: int, code: str,
                 attempts: Sequence[Attempt]) -> None:
    fault = Fault.CLIENT if status == CANCELLED else fault_of(code, http_status, attempts)
    _errors(*labels, fault.value).add()
    if fault is Fault.POLICY:
        _refusals(POLICY_CODES[code]).add()


def _count_attempts(attempts: Sequence[Attempt]) -> None:
    previous: Attempt | None = None
    for attempt in attempts:
        provider = attempt.target.upstream.provider_name
        _provider_requests(provider).add()
        _provider_duration(provider).observe(attempt.duration_ms / 1000)
        if attempt.fault:
            _provider_errors(provider, attempt.fault).add()
        outcome = attempt.fault or "ok"
        _attempts(provider, attempt_kind(attempt, previous), outcome).add()
        previous = attempt


def attempt_kind(attempt: Attempt, previous: Attempt | None) -> str:
    """first; retry (the same deployment again); failover (another deployment of the same model);
    fallback (a deployment of a fallback model)."""
    if previous is None:
        return "first"
    if attempt.fallback:
        return "fallback"
    return "retry" if attempt.target.deployment_id == previous.target.deployment_id else "failover"


def cache_looked_up(cache_status: str, seconds: float, *, waited: bool) -> None:
    """A lookup's outcome per tier (L1 first; L2 after an L1 miss, with Redis). A wait for an identical
    request's answer is not a lookup's time, so it is left out of the duration."""
    if cache_status == "hit-l1":
        decided_by = "l1"
        _cache_hits("l1").add()
    else:
        _cache_misses("l1").add()
        decided_by = "l2" if _has_l2() else "l1"
        if decided_by == "l2" and cache_status == "hit-l2":
            _cache_hits("l2").add()
        elif decided_by == "l2":
            _cache_misses("l2").add()
    if not waited:
        _cache_lookup(decided_by).observe(seconds)


@functools.cache  # a Django setting costs ~0.6 µs to read, and this one never changes in a running process
def _has_l2() -> bool:
    return redis_configured()


def overhead_measured(milliseconds: float) -> None:
    _overhead.observe(milliseconds / 1000)


def connection_opened() -> None:
    global active_connections
    active_connections += 1


def connection_closed() -> None:
    global active_connections
    active_connections -= 1
