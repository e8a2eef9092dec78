"""From the YAML tree to a validated ConfigDocument, or a ConfigError listing every problem.

No database access: the names already stored are passed in as KnownNames, so this layer can be
tested and reasoned about on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError

from apps.billing.models import BudgetPeriod, validate_timezone
from apps.providers.registry import ADAPTERS
from apps.proxy.config_file.fields import EntryReader, entry_label, type_name
from apps.proxy.config_file.parse_policy import parse_policy
from apps.proxy.config_file.schema import (
    SECTIONS,
    ConfigDocument,
    ConfigError,
    DeploymentSpec,
    KnownNames,
    ModelSpec,
    ProviderSpec,
    TenantSpec,
)
from apps.proxy.config_file.shapes import BUDGET, DEPLOYMENT, LIMITS, MODEL, POLICY, PROVIDER, TENANT, EntryShape

Spec = TypeVar("Spec")
Parser = Callable[[EntryReader], Spec]
PRICE_UNIT = "USD per million tokens"


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
        providers=_parse_section(sections["providers"], "providers", "name", PROVIDER, _provider, context),
        routing_policies=_parse_section(
            sections["routing_policies"], "routing_policies", "name", POLICY,
            lambda entry: parse_policy(entry, tenants=context.tenants), context,
        ),
        models=_parse_section(
            sections["models"], "models", "name", MODEL, lambda entry: _model(entry, context), context
        ),
        tenants=_parse_section(sections["tenants"], "tenants", "slug", TENANT, _tenant, context),
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
    entries: list[object], section: str, name_field: str, shape: EntryShape, parse: Parser[Spec],
    context: _Context,
) -> tuple[Spec, ...]:
    specs: list[Spec] = []
    first_seen: dict[str, str] = {}
    for index, raw in enumerate(entries):
        where = entry_label(section, index, raw, name_field)
        if not isinstance(raw, Mapping):
            context.errors.append(f"{where}: expected a mapping, got {type_name(raw)}")
            continue
        entry = EntryReader(raw, where=where, shape=shape, env=context.env, errors=context.errors)
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
        timeout_s=entry.number("timeout_s"),
        headers=entry.headers("headers"),
        enabled=entry.flag("enabled"),
        # Optional (Azure OpenAI only): absent means the gateway's default version.
        api_version=entry.text("api_version", max_length=32) if "api_version" in entry.raw else "",
    )


def _model(entry: EntryReader, context: _Context) -> ModelSpec:
    name = entry.text("name", max_length=200)
    policy = entry.text("policy", max_length=64)
    if policy and policy not in context.policies:
        entry.fail("policy", f"unknown routing policy {policy!r} (not in this file or the database)")
    enabled = entry.flag("enabled")
    deployments: list[DeploymentSpec] = []
    first_seen: dict[tuple[str, str], str] = {}
    for index, raw in enumerate(entry.entries("deployments")):
        if not isinstance(raw, Mapping):
            entry.fail(f"deployments[{index}]", f"expected a mapping, got {type_name(raw)}")
            continue
        reader = entry.child(raw, f"deployments[{index}]", DEPLOYMENT)
        deployment = _deployment(reader, context)
        if reader.ok and deployment.identity in first_seen:
            reader.fail("upstream_model", f"{first_seen[deployment.identity]} already deploys "
                                          f"{deployment.upstream_model!r} on {deployment.provider!r}")
        first_seen.setdefault(deployment.identity, f"deployments[{index}]")
        deployments.append(deployment)
    return ModelSpec(name=name, policy=policy, enabled=enabled, deployments=tuple(deployments))


def _deployment(entry: EntryReader, context: _Context) -> DeploymentSpec:
    provider = entry.text("provider", max_length=64)
    if provider and provider not in context.providers:
        entry.fail("provider", f"unknown provider {provider!r} (not in this file or the database)")
    return DeploymentSpec(
        provider=provider,
        upstream_model=entry.text("upstream_model", max_length=200),
        input_usd_per_mtok=entry.decimal("input_usd_per_mtok", unit=PRICE_UNIT),
        output_usd_per_mtok=entry.decimal("output_usd_per_mtok", unit=PRICE_UNIT),
        cached_input_usd_per_mtok=entry.optional_decimal("cached_input_usd_per_mtok", unit=PRICE_UNIT),
        cache_write_usd_per_mtok=entry.optional_decimal("cache_write_usd_per_mtok", unit=PRICE_UNIT),
        max_output_tokens=entry.optional_integer("max_output_tokens"),
        priority=entry.integer("priority"),
        weight=entry.integer("weight"),
        enabled=entry.flag("enabled"),
    )


def _tenant(entry: EntryReader) -> TenantSpec:
    """Absent ``limits`` or ``budget`` (or a field of them): unlimited."""
    limits, budget = entry.mapping("limits", LIMITS), entry.mapping("budget", BUDGET)
    budget_usd = budget.optional_decimal("usd", unit="USD")
    if budget.raw.get("usd") is None and "period" in budget.raw:
        budget.fail("period", "has no effect without usd (the amount per period)")
    return TenantSpec(
        slug=entry.text("slug", max_length=64, slug=True),
        name=entry.text("name", max_length=200),
        active=entry.flag("active"),
        rpm=limits.optional_integer("rpm"),
        tpm=limits.optional_integer("tpm"),
        max_parallel=limits.optional_integer("max_parallel"),
        budget_usd=budget_usd,
        budget_period=budget.choice("period", BudgetPeriod.values, what="budget period"),
        timezone=_timezone(budget),
    )


def _timezone(budget: EntryReader) -> str:
    if "timezone" not in budget.raw:
        return str(budget.shape.default("timezone"))
    zone = budget.text("timezone", max_length=64)
    try:
        if zone:  # else text() has said what is wrong
            validate_timezone(zone)
    except ValidationError as exc:
        budget.fail("timezone", " ".join(exc.messages))
    return zone
