"""A routing_policies[] entry: every default and bound is RoutingPolicy's (apps.routing.models)."""

from __future__ import annotations

from collections.abc import Mapping, Set

from apps.proxy.config_file.fields import EntryReader, type_name
from apps.proxy.config_file.schema import PolicySpec
from apps.routing.models import Strategy


def parse_policy(entry: EntryReader, *, tenants: Set[str]) -> PolicySpec:
    """``tenants``: the slugs declared in the file or stored, which a shared cache namespace may name."""
    return PolicySpec(
        name=entry.text("name", max_length=64, slug=True),
        strategy=entry.choice("strategy", Strategy.values, what="strategy"),
        max_retries=entry.integer("max_retries"),
        same_deployment_retries=entry.integer("same_deployment_retries"),
        backoff_start_ms=entry.integer("backoff_start_ms"),
        backoff_multiplier=entry.number("backoff_multiplier"),
        backoff_cap_s=entry.number("backoff_cap_s"),
        retry_after_cap_s=entry.number("retry_after_cap_s"),
        retry_budget_ratio=entry.number("retry_budget_ratio"),
        request_deadline_s=entry.number("request_deadline_s"),
        stream_idle_timeout_s=entry.number("stream_idle_timeout_s"),
        stream_deadline_s=entry.number("stream_deadline_s"),
        breaker_failure_threshold=entry.integer("breaker_failure_threshold"),
        breaker_reset_s=entry.number("breaker_reset_s"),
        breaker_success_threshold=entry.integer("breaker_success_threshold"),
        hybrid_cost_weight=entry.number("hybrid_cost_weight"),
        hybrid_latency_weight=entry.number("hybrid_latency_weight"),
        hybrid_reliability_weight=entry.number("hybrid_reliability_weight"),
        fallbacks=_fallbacks(entry),
        cache_enabled=entry.flag("cache_enabled"),
        cache_ttl_s=entry.integer("cache_ttl_s"),
        cache_shared_tenants=_tenant_slugs(entry, "cache_shared_tenants", tenants),
    )


def _tenant_slugs(entry: EntryReader, field: str, tenants: Set[str]) -> tuple[str, ...]:
    value = entry.raw.get(field, [])
    if not isinstance(value, list) or not all(isinstance(slug, str) for slug in value):
        entry.fail(field, f"expected a list of tenant slugs, got {type_name(value)}")
        return ()
    for slug in value:
        if slug not in tenants:
            entry.fail(field, f"unknown tenant {slug!r} (not in this file or the database)")
    if len(set(value)) != len(value):
        entry.fail(field, "lists a tenant more than once")
    return tuple(sorted(value))


def _fallbacks(entry: EntryReader) -> dict[str, tuple[str, ...]]:
    """``{error code or "default": [model name, …]}``; names not served when a request runs are skipped."""
    raw = entry.raw.get("fallbacks", {})
    if not isinstance(raw, Mapping):
        entry.fail("fallbacks", f"expected a mapping of error codes to model names, got {type_name(raw)}")
        return {}
    fallbacks: dict[str, tuple[str, ...]] = {}
    for code, names in raw.items():
        if not isinstance(code, str) or not code:
            entry.fail("fallbacks", "keys must be error codes such as context_length_exceeded, or default")
        elif not isinstance(names, list) or not all(isinstance(name, str) and 0 < len(name) <= 200 for name in names):
            entry.fail(f"fallbacks.{code}", "expected a list of model names")
        else:
            fallbacks[code] = tuple(names)
    return fallbacks
