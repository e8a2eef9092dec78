"""From the YAML tree to a validated ConfigDocument, or a ConfigError listing every problem.

No database access: the names already stored are passed in as KnownNames, so this layer can be
tested and reasoned about on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from apps.providers.registry import ADAPTERS
from apps.proxy.config_file.fields import EntryReader, entry_label, type_name
from apps.proxy.config_file.schema import (
    ROUTING_FIELDS,
    SECTIONS,
    ConfigDocument,
    ConfigError,
    DeploymentSpec,
    KnownNames,
    ModelSpec,
    PolicySpec,
    ProviderSpec,
    TenantSpec,
)
from apps.routing.models import Strategy

Spec = TypeVar("Spec")
Parser = Callable[[EntryReader], Spec]

PROVIDER_FIELDS = ("name", "kind", "base_url", "api_key", "timeout_s", "headers", "enabled", "api_version")
POLICY_FIELDS = (
    "name", "strategy", "max_retries", *ROUTING_FIELDS, "fallbacks", "cache_enabled", "cache_ttl_s",
    "cache_shared_tenants",
)
CACHE_TTL_MAX_S = 2**31 - 1  # PositiveIntegerField
MODEL_FIELDS = ("name", "policy", "enabled", "deployments")
DEPLOYMENT_FIELDS = ("provider", "upstream_model", "input_usd_per_mtok", "output_usd_per_mtok",
                     "cached_input_usd_per_mtok", "cache_write_usd_per_mtok", "priority", "weight", "enabled")
TENANT_FIELDS = ("slug", "name", "active")


class _Context:
    def __init__(self, env: Mapping[str, str], known: KnownNames) -> None:
        self.env = env
        self.errors: list[str] = []
        self.providers: set[str] = set(known.providers)
        self.policies: set[str] = set(known.routing_policies)
        self.tenants: set[str] = set(known.tenants)


def parse_document(data: object, *, env: Mapping[str, str], known: KnownNames) -> ConfigDocument:
    if not isinstance(data, Mapping):
        expected = f"expected a mapping with any of the sections {', '.join(SECTIONS)}"
        raise ConfigError([f"{expected}, got {type_name(data)}"])
    context = _Context(env, known)
    for key in data:
        if key not in SECTIONS:
            context.errors.append(f"{key}: unknown section (expected one of: {', '.join(SECTIONS)})")
    sections = {section: _section_entries(data, section, context) for section in SECTIONS}
    # Entries that failed validation still count as declared, so one typo is not reported twice
    # (once on the provider and again on every deployment that uses it).
    context.providers |= _declared(sections["providers"], "name")
    context.policies |= _declared(sections["routing_policies"], "name")
    context.tenants |= _declared(sections["tenants"], "slug")
    document = ConfigDocument(
        providers=_parse_section(sections["providers"], "providers", "name", PROVIDER_FIELDS, _provider, context),
        routing_policies=_parse_section(
            sections["routing_policies"], "routing_policies", "name", POLICY_FIELDS,
            lambda entry: _policy(entry, context), context,
        ),
        models=_parse_section(
            sections["models"], "models", "name", MODEL_FIELDS, lambda entry: _model(entry, context), context
        ),
        tenants=_parse_section(sections["tenants"], "tenants", "slug", TENANT_FIELDS, _tenant, context),
    )
    if context.errors:
        raise ConfigError(context.errors)
    return document


def _section_entries(data: Mapping[Any, Any], section: str, context: _Context) -> list[object]:
    value = data.get(section)
    if value is None:  # absent, or a heading with nothing under it
        return []
    if not isinstance(value, list):
        context.errors.append(f"{section}: expected a list of entries, got {type_name(value)}")
        return []
    return value


def _declared(entries: list[object], name_field: str) -> set[str]:
    names = (entry.get(name_field) for entry in entries if isinstance(entry, Mapping))
    return {name for name in names if isinstance(name, str)}


def _parse_section(
    entries: list[object], section: str, name_field: str, fields: tuple[str, ...], parse: Parser[Spec],
    context: _Context,
) -> tuple[Spec, ...]:
    specs: list[Spec] = []
    first_seen: dict[str, str] = {}
    for index, raw in enumerate(entries):
        where = entry_label(section, index, raw, name_field)
        if not isinstance(raw, Mapping):
            context.errors.append(f"{where}: expected a mapping, got {type_name(raw)}")
            continue
        entry = EntryReader(raw, where=where, fields=fields, env=context.env, errors=context.errors)
        spec = parse(entry)
        name = raw.get(name_field)
        if isinstance(name, str) and name in first_seen:
            entry.fail(name_field, f"{name!r} is already declared by {first_seen[name]}")
        elif isinstance(name, str):
            first_seen[name] = where
        if entry.ok:
            specs.append(spec)
    return tuple(specs)


def _provider(entry: EntryReader) -> ProviderSpec:
    return ProviderSpec(
        name=entry.text("name", max_length=64, slug=True),
        kind=entry.choice("kind", ADAPTERS, what="provider kind"),
        base_url=entry.url("base_url", max_length=500),
        api_key=entry.secret("api_key"),
        timeout_s=entry.number("timeout_s", default=60.0, minimum=0.1),
        headers=entry.headers("headers"),
        enabled=entry.flag("enabled", default=True),
        # Optional (Azure OpenAI only): absent means the gateway's default version.
        api_version=entry.text("api_version", max_length=32) if "api_version" in entry.raw else "",
    )


def _policy(entry: EntryReader, context: _Context) -> PolicySpec:
    cache_ttl_s = entry.integer("cache_ttl_s", default=3600, maximum=CACHE_TTL_MAX_S)
    if cache_ttl_s < 1 and entry.ok:
        entry.fail("cache_ttl_s", "must be at least 1 second (turn the cache off with cache_enabled: false)")
    return PolicySpec(
        name=entry.text("name", max_length=64, slug=True),
        strategy=entry.choice("strategy", Strategy.values, what="strategy", default=Strategy.FAILOVER.value),
        max_retries=entry.integer("max_retries", default=2),
        same_deployment_retries=entry.integer("same_deployment_retries", default=1),
        backoff_start_ms=entry.integer("backoff_start_ms", default=100, maximum=600_000),
        backoff_multiplier=entry.number("backoff_multiplier", default=2.0, minimum=1.0),
        backoff_cap_s=entry.number("backoff_cap_s", default=10.0, minimum=0.0),
        retry_after_cap_s=entry.number("retry_after_cap_s", default=2.0, minimum=0.0),
        retry_budget_ratio=entry.number("retry_budget_ratio", default=0.2, minimum=0.0),
        request_deadline_s=entry.number("request_deadline_s", default=120.0, minimum=0.1),
        stream_idle_timeout_s=entry.number("stream_idle_timeout_s", default=30.0, minimum=0.1),
        stream_deadline_s=entry.number("stream_deadline_s", default=600.0, minimum=0.1),
        breaker_failure_threshold=entry.integer("breaker_failure_threshold", default=5),
        breaker_reset_s=entry.number("breaker_reset_s", default=30.0, minimum=0.1),
        breaker_success_threshold=_at_least_one(entry, "breaker_success_threshold", default=2),
        hybrid_cost_weight=_fraction(entry, "hybrid_cost_weight", default=0.4),
        hybrid_latency_weight=_fraction(entry, "hybrid_latency_weight", default=0.4),
        hybrid_reliability_weight=_fraction(entry, "hybrid_reliability_weight", default=0.2),
        fallbacks=_fallbacks(entry),
        cache_enabled=entry.flag("cache_enabled", default=False),
        cache_ttl_s=cache_ttl_s,
        cache_shared_tenants=_tenant_slugs(entry, "cache_shared_tenants", context),
    )


def _tenant_slugs(entry: EntryReader, field: str, context: _Context) -> tuple[str, ...]:
    value = entry.raw.get(field, [])
    if not isinstance(value, list) or not all(isinstance(slug, str) for slug in value):
        entry.fail(field, f"expected a list of tenant slugs, got {type_name(value)}")
        return ()
    for slug in value:
        if slug not in context.tenants:
            entry.fail(field, f"unknown tenant {slug!r} (not in this file or the database)")
    if len(set(value)) != len(value):
        entry.fail(field, "lists a tenant more than once")
    return tuple(sorted(value))


def _at_least_one(entry: EntryReader, field: str, *, default: int) -> int:
    value = entry.integer(field, default=default)
    if value < 1 and field in entry.raw:
        entry.fail(field, f"must be at least 1, got {value}")
    return value


def _fraction(entry: EntryReader, field: str, *, default: float) -> float:
    value = entry.number(field, default=default, minimum=0.0)
    if value > 1:
        entry.fail(field, f"must be between 0 and 1, got {value}")
    return value


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


def _model(entry: EntryReader, context: _Context) -> ModelSpec:
    name = entry.text("name", max_length=200)
    policy = entry.text("policy", max_length=64)
    if policy and policy not in context.policies:
        entry.fail("policy", f"unknown routing policy {policy!r} (not in this file or the database)")
    enabled = entry.flag("enabled", default=True)
    deployments: list[DeploymentSpec] = []
    first_seen: dict[tuple[str, str], str] = {}
    for index, raw in enumerate(entry.entries("deployments")):
        where = f"{entry.where}.deployments[{index}]"
        if not isinstance(raw, Mapping):
            entry.fail(f"deployments[{index}]", f"expected a mapping, got {type_name(raw)}")
            continue
        reader = EntryReader(raw, where=where, fields=DEPLOYMENT_FIELDS, env=context.env, errors=context.errors)
        deployment = _deployment(reader, context)
        if reader.ok and deployment.identity in first_seen:
            reader.fail("upstream_model", f"{first_seen[deployment.identity]} already deploys "
                                          f"{deployment.upstream_model!r} on {deployment.provider!r}")
        first_seen.setdefault(deployment.identity, f"deployments[{index}]")
        entry.ok = entry.ok and reader.ok
        deployments.append(deployment)
    return ModelSpec(name=name, policy=policy, enabled=enabled, deployments=tuple(deployments))


def _deployment(entry: EntryReader, context: _Context) -> DeploymentSpec:
    provider = entry.text("provider", max_length=64)
    if provider and provider not in context.providers:
        entry.fail("provider", f"unknown provider {provider!r} (not in this file or the database)")
    return DeploymentSpec(
        provider=provider,
        upstream_model=entry.text("upstream_model", max_length=200),
        input_usd_per_mtok=entry.price("input_usd_per_mtok"),
        output_usd_per_mtok=entry.price("output_usd_per_mtok"),
        cached_input_usd_per_mtok=entry.optional_price("cached_input_usd_per_mtok"),
        cache_write_usd_per_mtok=entry.optional_price("cache_write_usd_per_mtok"),
        priority=entry.integer("priority", default=1),
        weight=entry.integer("weight", default=1),
        enabled=entry.flag("enabled", default=True),
    )


def _tenant(entry: EntryReader) -> TenantSpec:
    return TenantSpec(
        slug=entry.text("slug", max_length=64, slug=True),
        name=entry.text("name", max_length=200),
        active=entry.flag("active", default=True),
    )
