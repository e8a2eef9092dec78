"""Counting a request's metrics on the hot path: once when it ends (``request_finished``, from
``Exchange.finish``), once for its cache lookup, its overhead when its headers are stamped, and the
connection gauge around it (``edge_project.lifespan``).

Each series' children are bound once per label set and kept (``_bound``), each behind a ``Tally``, so
a request costs a few float additions and no label handling; ``tally.flush()`` writes them out. Every
label set is bounded by configuration (``families``), so the tables stay small.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

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
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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


def _bound(table: dict[K, V], key: K, bind: Callable[[K], V]) -> V:
    child = table.get(key)
    if child is None:
        child = table[key] = bind(key)
    return child


def _labels(family: Counter | Gauge) -> Callable[[Any], Tally]:
    return lambda key: Tally(family.labels(*key) if isinstance(key, tuple) else family.labels(key))


def _buckets(family: Histogram) -> Callable[[Any], HistogramTally]:
    return lambda key: HistogramTally(family.labels(key))


_series: dict[tuple[str, str], Series] = {}
_errors: dict[tuple[str, str, str], Tally] = {}
_refusals: dict[str, Tally] = {}
_tenant_tokens: dict[str, Tally] = {}
_tenant_cost: dict[str, Tally] = {}
_provider_requests: dict[str, Tally] = {}
_provider_duration: dict[str, HistogramTally] = {}
_provider_errors: dict[tuple[str, str], Tally] = {}
_attempts: dict[tuple[str, str, str], Tally] = {}
_cache_hits: dict[str, Tally] = {}
_cache_misses: dict[str, Tally] = {}
_cache_lookup: dict[str, HistogramTally] = {}
_overhead = HistogramTally(m.overhead)
active_connections = 0  # this process's; the upkeep sets the gauge from it


def request_finished(exchange: Exchange, *, status: str, http_status: int, error_type: str) -> None:
    """Step 6's metrics: the request, its tokens and cost (the ledger row's), and each attempt."""
    attempts = exchange.attempts
    provider = attempts[-1].target.upstream.provider_name if attempts else NO_PROVIDER
    labels = (provider, exchange.route or UNKNOWN_MODEL)
    series = _bound(_series, labels, Series.of)
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
            _bound(_tenant_tokens, _tenant(exchange), _labels(m.tenant_tokens)).add(usage.total_tokens)
        _count_attempts(attempts)
    if exchange.cost_usd:
        cents = float(exchange.cost_usd * HUNDRED)  # the ledger's Decimal, made a float only here
        series.cost_cents.add(cents)
        _bound(_tenant_cost, _tenant(exchange), _labels(m.tenant_cost_cents)).add(cents)


def _tenant(exchange: Exchange) -> str:
    return exchange.key.tenant_slug if exchange.key is not None else ""


def _count_error(labels: tuple[str, str], status: str, http_status: int, code: str,
                 attempts: Sequence[Attempt]) -> None:
    fault = Fault.CLIENT if status == CANCELLED else fault_of(code, http_status, attempts)
    _bound(_errors, (*labels, fault.value), _labels(m.errors)).add()
    if fault is Fault.POLICY:
        _bound(_refusals, POLICY_CODES[code], _labels(m.refusals)).add()


def _count_attempts(attempts: Sequence[Attempt]) -> None:
    previous: Attempt | None = None
    for attempt in attempts:
        provider = attempt.target.upstream.provider_name
        _bound(_provider_requests, provider, _labels(m.provider_requests)).add()
        _bound(_provider_duration, provider, _buckets(m.provider_duration)).observe(attempt.duration_ms / 1000)
        if attempt.fault:
            _bound(_provider_errors, (provider, attempt.fault), _labels(m.provider_errors)).add()
        outcome = attempt.fault or "ok"
        _bound(_attempts, (provider, attempt_kind(attempt, previous), outcome), _labels(m.attempts)).add()
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
        _bound(_cache_hits, "l1", _labels(m.cache_hits)).add()
    else:
        _bound(_cache_misses, "l1", _labels(m.cache_misses)).add()
        decided_by = "l2" if _has_l2() else "l1"
        if decided_by == "l2" and cache_status == "hit-l2":
            _bound(_cache_hits, "l2", _labels(m.cache_hits)).add()
        elif decided_by == "l2":
            _bound(_cache_misses, "l2", _labels(m.cache_misses)).add()
    if not waited:
        _bound(_cache_lookup, decided_by, _buckets(m.cache_lookup)).observe(seconds)


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
