"""Writing a config file to the database: validate all of it, then upsert it in one transaction.

Entries are matched by name (tenants by slug, deployments by provider + upstream model). Optional
fields left out of an entry take the model's defaults, except a provider's ``api_key``, which is
kept as stored. A listed model's deployments are its complete set; everything not in the file is
left alone. Rows are saved only when something changed, so ``updated_at`` means something.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction

from apps.billing.models import Tenant
from apps.providers.models import Provider
from apps.providers.secrets import SecretUnreadable
from apps.proxy.config_file.parse import parse_document
from apps.proxy.config_file.schema import (
    ConfigDocument,
    DeploymentSpec,
    KnownNames,
    ModelSpec,
    PolicySpec,
    ProviderSpec,
    TenantSpec,
)
from apps.routing.models import Deployment, PublicModel, RoutingPolicy
from apps.routing.price_versions import ensure_price_version, prices_differ, set_prices


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)

    def add(self, *, created: bool, changed: bool) -> None:
        if created:
            self.created += 1
        elif changed:
            self.updated += 1
        else:
            self.unchanged += 1

    def summary(self, section: str, *, removals: bool = False) -> str:
        line = f"{section}: {self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        if removals:
            line += f", {len(self.removed)} removed"
            if self.removed:
                line += f" ({'; '.join(self.removed)})"
        return line


@dataclass
class ApplyReport:
    written: bool
    providers: Counts = field(default_factory=Counts)
    routing_policies: Counts = field(default_factory=Counts)
    models: Counts = field(default_factory=Counts)
    deployments: Counts = field(default_factory=Counts)
    tenants: Counts = field(default_factory=Counts)

    def lines(self) -> list[str]:
        return [
            self.providers.summary("providers"),
            self.routing_policies.summary("routing_policies"),
            self.models.summary("models"),
            self.deployments.summary("deployments", removals=True),
            self.tenants.summary("tenants"),
        ]


APPLIED_NOTE = "config as code (edge_apply)"


def apply_config(*, data: object, env: Mapping[str, str], write: bool) -> ApplyReport:
    """Validate ``data`` (the parsed YAML) against itself and the database, then write it unless
    ``write`` is false. Raises ConfigError, having written nothing, if anything is wrong."""
    with transaction.atomic():
        document = parse_document(data, env=env, known=_known_names())
        return _write(document, write=write)


def _known_names() -> KnownNames:
    return KnownNames(
        providers=frozenset(Provider.objects.values_list("name", flat=True)),
        routing_policies=frozenset(RoutingPolicy.objects.values_list("name", flat=True)),
        tenants=frozenset(Tenant.objects.values_list("slug", flat=True)),
    )


def _write(document: ConfigDocument, *, write: bool) -> ApplyReport:
    report = ApplyReport(written=write)
    providers = _upsert_providers(document.providers, report.providers, write=write)
    policies = _upsert_policies(document.routing_policies, report.routing_policies, write=write)
    for spec in document.models:
        _upsert_model(spec, report, providers=providers, policies=policies, write=write)
    for tenant in document.tenants:
        _upsert_tenant(tenant, report.tenants, write=write)
    if write:  # after the tenants, which a policy's shared cache namespace may name
        for policy_spec in document.routing_policies:
            shared = Tenant.objects.filter(slug__in=policy_spec.cache_shared_tenants)
            policies[policy_spec.name].cache_shared_tenants.set(shared)
    return report


def _assign(row: models.Model, **values: Any) -> bool:
    """Set the fields that differ and say whether any did (Decimal("0.6") equals Decimal("0.600000"))."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _save(row: models.Model, *, created: bool, changed: bool, write: bool) -> None:
    if write and (created or changed):
        row.save()


def _upsert_providers(specs: tuple[ProviderSpec, ...], counts: Counts, *, write: bool) -> dict[str, Provider]:
    rows = {provider.name: provider for provider in Provider.objects.all()}
    for spec in specs:
        created = spec.name not in rows
        provider = rows.setdefault(spec.name, Provider(name=spec.name))
        changed = _assign(
            provider, kind=spec.kind, base_url=spec.base_url, timeout_s=spec.timeout_s,
            extra_headers=dict(spec.headers), enabled=spec.enabled, api_version=spec.api_version,
        )
        if spec.api_key is not None and (created or _stored_key(provider) != spec.api_key):
            provider.set_api_key(spec.api_key)
            changed = True
        counts.add(created=created, changed=changed)
        _save(provider, created=created, changed=changed, write=write)
    return rows


def _stored_key(provider: Provider) -> str | None:
    try:
        return provider.api_key()
    except SecretUnreadable:  # encrypted under a retired key: the file's key replaces it
        return None


def _upsert_policies(specs: tuple[PolicySpec, ...], counts: Counts, *, write: bool) -> dict[str, RoutingPolicy]:
    rows = {policy.name: policy for policy in RoutingPolicy.objects.all()}
    for spec in specs:
        created = spec.name not in rows
        policy = rows.setdefault(spec.name, RoutingPolicy(name=spec.name))
        changed = _assign(
            policy, strategy=spec.strategy, max_retries=spec.max_retries, cache_enabled=spec.cache_enabled,
            cache_ttl_s=spec.cache_ttl_s, **spec.routing_values(),
        )
        changed = changed or _shared_tenants(policy) != spec.cache_shared_tenants
        counts.add(created=created, changed=changed)
        _save(policy, created=created, changed=changed, write=write)
    return rows


def _shared_tenants(policy: RoutingPolicy) -> tuple[str, ...]:
    if policy._state.adding:
        return ()
    return tuple(sorted(policy.cache_shared_tenants.values_list("slug", flat=True)))


def _upsert_model(
    spec: ModelSpec, report: ApplyReport, *, providers: dict[str, Provider], policies: dict[str, RoutingPolicy],
    write: bool,
) -> None:
    model = PublicModel.objects.select_related("policy").filter(name=spec.name).first()
    created = model is None
    if model is None:
        model = PublicModel(name=spec.name)
    policy = policies[spec.policy]
    changed = created or model.policy.name != spec.policy or model.enabled != spec.enabled
    model.policy, model.enabled = policy, spec.enabled
    report.models.add(created=created, changed=changed)
    _save(model, created=created, changed=changed, write=write)
    _sync_deployments(model, spec, report.deployments, providers=providers, write=write)


def _sync_deployments(
    model: PublicModel, spec: ModelSpec, counts: Counts, *, providers: dict[str, Provider], write: bool
) -> None:
    existing = {
        (row.provider.name, row.upstream_model): row
        for row in (model.deployments.select_related("provider") if model.pk else Deployment.objects.none())
    }
    for deployment_spec in spec.deployments:
        row = existing.pop(deployment_spec.identity, None)
        created = row is None
        if row is None:
            row = Deployment(model=model, provider=providers[deployment_spec.provider],
                             upstream_model=deployment_spec.upstream_model)
        prices = _deployment_prices(deployment_spec)
        reprice = not created and prices_differ(row, **prices)
        changed = _assign(row, **(_deployment_values(deployment_spec) | (prices if created else {})))
        counts.add(created=created, changed=changed or reprice)
        _save(row, created=created, changed=changed, write=write)
        if write and created:
            ensure_price_version(deployment=row, note=APPLIED_NOTE)
        elif write and reprice:  # a new version from now on: what was served before keeps its prices
            set_prices(deployment=row, note=APPLIED_NOTE, **prices)
    for (provider_name, upstream_model), row in existing.items():
        counts.removed.append(f"{model.name} → {provider_name}/{upstream_model}")
        if write:
            row.delete()


def _deployment_prices(spec: DeploymentSpec) -> dict[str, Any]:
    """A file's prices are a deployment's newest; changed ones become a version effective now."""
    return {
        "input_usd_per_mtok": spec.input_usd_per_mtok,
        "output_usd_per_mtok": spec.output_usd_per_mtok,
        "cached_input_usd_per_mtok": spec.cached_input_usd_per_mtok,
        "cache_write_usd_per_mtok": spec.cache_write_usd_per_mtok,
    }


def _deployment_values(spec: DeploymentSpec) -> dict[str, Any]:
    return {
        "max_output_tokens": spec.max_output_tokens,
        "priority": spec.priority,
        "weight": spec.weight,
        "enabled": spec.enabled,
    }


def _upsert_tenant(spec: TenantSpec, counts: Counts, *, write: bool) -> None:
    tenant = Tenant.objects.filter(slug=spec.slug).first()
    created = tenant is None
    if tenant is None:
        tenant = Tenant(slug=spec.slug)
    changed = _assign(tenant, **spec.stored_values())
    counts.add(created=created, changed=changed)
    _save(tenant, created=created, changed=changed, write=write)
