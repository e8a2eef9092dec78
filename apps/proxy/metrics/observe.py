"""Counting a request's metrics on the hot path: once when it ends (``request_finished``, from
``Exchange.finish``), once for its cache lookup, and its overhead when its headers are stamped.

Each series' children are bound once per label set and kept (``_bound``), so a request costs a few
increments of memory-mapped floats and no label handling; every label set is bounded by
configuration (``families``), so the tables stay small.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import Counter, Histogram

from apps.providers.errors import Fault
from apps.proxy.faults import POLICY_CODES, fault_of
from apps.proxy.metrics import families as m
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

    requests: Any
    successes: Any
    duration: Any
    ttft: Any
    tokens: Any
    prompt: Any
    completion: Any
    cost_cents: Any

    @classmethod
    def of(cls, labels: tuple[str, str]) -> Series:
        return cls(*(family.labels(*labels) for family in (
            m.requests, m.successes, m.duration, m.ttft, m.tokens, m.prompt_tokens, m.completion_tokens, m.cost_cents,
        )))


def _bound(table: dict[K, V], key: K, bind: Callable[[K], V]) -> V:
    child = table.get(key)
    if child is None:
        child = table[key] = bind(key)
    return child


def _labels(family: Counter | Histogram) -> Callable[[Any], Any]:
    return lambda key: family.labels(*key) if isinstance(key, tuple) else family.labels(key)


_series: dict[tuple[str, str], Series] = {}
_errors: dict[tuple[str, str, str], Any] = {}
_refusals: dict[str, Any] = {}
_tenant_tokens: dict[str, Any] = {}
_tenant_cost: dict[str, Any] = {}
_provider_requests: dict[str, Any] = {}
_provider_duration: dict[str, Any] = {}
_provider_errors: dict[tuple[str, str], Any] = {}
_attempts: dict[tuple[str, str, str], Any] = {}
_cache_hits: dict[str, Any] = {}
_cache_misses: dict[str, Any] = {}
_cache_lookup: dict[str, Any] = {}


def request_finished(exchange: Exchange, *, status: str, http_status: int, error_type: str) -> None:
    """Step 6's metrics: the request, its tokens and cost (the ledger row's), and each attempt."""
    attempts = exchange.attempts
    provider = attempts[-1].target.upstream.provider_name if attempts else NO_PROVIDER
    labels = (provider, exchange.route or UNKNOWN_MODEL)
    series = _bound(_series, labels, Series.of)
    series.requests.inc()
    if status == "ok":
        series.successes.inc()
    else:
        _count_error(labels, status, http_status, error_type, attempts)
    series.duration.observe(time.perf_counter() - exchange.started)
    if exchange.ttft_ms is not None:
        series.ttft.observe(exchange.ttft_ms / 1000)
    if attempts:  # what providers were paid for; a cache hit's usage was paid when it was made
        usage = exchange.usage
        if usage.total_tokens:
            series.tokens.inc(usage.total_tokens)
            series.prompt.inc(usage.prompt_tokens)
            series.completion.inc(usage.completion_tokens)
            _bound(_tenant_tokens, _tenant(exchange), _labels(m.tenant_tokens)).inc(usage.total_tokens)
        _count_attempts(attempts)
    if exchange.cost_usd:
        cents = float(exchange.cost_usd * HUNDRED)  # the ledger's Decimal, made a float only here
        series.cost_cents.inc(cents)
        _bound(_tenant_cost, _tenant(exchange), _labels(m.tenant_cost_cents)).inc(cents)


def _tenant(exchange: Exchange) -> str:
    return exchange.key.tenant_slug if exchange.key is not None else ""


def _count_error(labels: tuple[str, str], status: str, http_status: int, code: str,
                 attempts: Sequence[Attempt]) -> None:
    fault = Fault.CLIENT if status == CANCELLED else fault_of(code, http_status, attempts)
    _bound(_errors, (*labels, fault.value), _labels(m.errors)).inc()
    if fault is Fault.POLICY:
        _bound(_refusals, POLICY_CODES[code], _labels(m.refusals)).inc()


def _count_attempts(attempts: Sequence[Attempt]) -> None:
    previous: Attempt | None = None
    for attempt in attempts:
        provider = attempt.target.upstream.provider_name
        _bound(_provider_requests, provider, _labels(m.provider_requests)).inc()
        _bound(_provider_duration, provider, _labels(m.provider_duration)).observe(attempt.duration_ms / 1000)
        if attempt.fault:
            _bound(_provider_errors, (provider, attempt.fault), _labels(m.provider_errors)).inc()
        outcome = attempt.fault or "ok"
        _bound(_attempts, (provider, attempt_kind(attempt, previous), outcome), _labels(m.attempts)).inc()
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
        _bound(_cache_hits, "l1", _labels(m.cache_hits)).inc()
    else:
        _bound(_cache_misses, "l1", _labels(m.cache_misses)).inc()
        decided_by = "l2" if redis_configured() else "l1"
        if decided_by == "l2" and cache_status == "hit-l2":
            _bound(_cache_hits, "l2", _labels(m.cache_hits)).inc()
        elif decided_by == "l2":
            _bound(_cache_misses, "l2", _labels(m.cache_misses)).inc()
    if not waited:
        _bound(_cache_lookup, decided_by, _labels(m.cache_lookup)).observe(seconds)


def overhead_measured(milliseconds: float) -> None:
    m.overhead.observe(milliseconds / 1000)
