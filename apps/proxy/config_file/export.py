"""The stored configuration as a file edge_apply accepts, without secrets.

Export → apply on an empty database → export gives the same text: everything is ordered by name
(deployments by priority, then creation, which is the order failover tries them in), prices are
written exactly as decimal strings, and any literal ``${`` is escaped so apply reads it back as is.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from apps.billing.models import Tenant
from apps.providers.models import Provider
from apps.proxy.config_file.schema import LIMIT_FIELDS, ROUTING_FIELDS
from apps.proxy.config_file.shapes import BUDGET
from apps.proxy.config_file.variables import escape_variables
from apps.proxy.config_file.yaml_io import dump_yaml
from apps.routing.models import Deployment, PublicModel, RoutingPolicy

HEADER = """\
# LLM Edge configuration, written by `manage.py edge_export`; apply it with `manage.py edge_apply FILE`.
# Provider API keys are never exported. A provider that has a key gets a placeholder instead,
# api_key: "${<NAME>_API_KEY}" (the provider name upper-cased, '-' as '_'), which edge_apply
# fills from that environment variable.
"""


def api_key_variable(provider_name: str) -> str:
    return f"{provider_name.upper().replace('-', '_')}_API_KEY"


def export_config() -> str:
    providers = list(Provider.objects.order_by("name"))
    header = HEADER
    needed = [api_key_variable(provider.name) for provider in providers if provider.has_api_key]
    if needed:
        header += f"# Set before applying: {', '.join(needed)}\n"
    document = {
        "providers": [_provider(provider) for provider in providers],
        "routing_policies": [_policy(policy) for policy in
                             RoutingPolicy.objects.order_by("name").prefetch_related("cache_shared_tenants")],
        "models": _models(),
        "tenants": [_tenant(tenant) for tenant in Tenant.objects.order_by("slug")],
    }
    return header + dump_yaml(document)


def _provider(provider: Provider) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": provider.name, "kind": provider.kind, "base_url": escape_variables(provider.base_url),
    }
    if provider.has_api_key:
        entry["api_key"] = "${" + api_key_variable(provider.name) + "}"
    entry["timeout_s"] = provider.timeout_s
    entry["headers"] = {name: escape_variables(value) for name, value in sorted(provider.extra_headers.items())}
    entry["enabled"] = provider.enabled
    if provider.api_version:
        entry["api_version"] = provider.api_version
    return entry


def _policy(policy: RoutingPolicy) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": policy.name, "strategy": policy.strategy, "max_retries": policy.max_retries}
    entry.update({name: getattr(policy, name) for name in ROUTING_FIELDS})
    entry["fallbacks"] = {code: list(names) for code, names in sorted((policy.fallbacks or {}).items())}
    entry.update({
        "cache_enabled": policy.cache_enabled, "cache_ttl_s": policy.cache_ttl_s,
        "cache_shared_tenants": sorted(tenant.slug for tenant in policy.cache_shared_tenants.all()),
    })
    return entry


def _models() -> list[dict[str, Any]]:
    deployments: dict[int, list[dict[str, Any]]] = {}
    for row in Deployment.objects.select_related("provider").order_by("model_id", "priority", "id"):
        deployments.setdefault(row.model_id, []).append(_deployment(row))
    return [
        {"name": escape_variables(model.name), "policy": model.policy.name, "enabled": model.enabled,
         "deployments": deployments.get(model.pk, [])}
        for model in PublicModel.objects.select_related("policy").order_by("name")
    ]


def _deployment(row: Deployment) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "provider": row.provider.name,
        "upstream_model": escape_variables(row.upstream_model),
        "input_usd_per_mtok": decimal_text(row.input_usd_per_mtok),
        "output_usd_per_mtok": decimal_text(row.output_usd_per_mtok),
    }
    if row.cached_input_usd_per_mtok is not None:
        entry["cached_input_usd_per_mtok"] = decimal_text(row.cached_input_usd_per_mtok)
    if row.cache_write_usd_per_mtok is not None:
        entry["cache_write_usd_per_mtok"] = decimal_text(row.cache_write_usd_per_mtok)
    if row.max_output_tokens is not None:
        entry["max_output_tokens"] = row.max_output_tokens
    entry.update(priority=row.priority, weight=row.weight, enabled=row.enabled)
    return entry


def _tenant(tenant: Tenant) -> dict[str, Any]:
    entry: dict[str, Any] = {"slug": tenant.slug, "name": escape_variables(tenant.name), "active": tenant.is_active}
    limits = {name: getattr(tenant, name) for name in LIMIT_FIELDS if getattr(tenant, name) is not None}
    if limits:
        entry["limits"] = limits
    if tenant.budget_usd is not None:
        entry["budget"] = {"usd": decimal_text(tenant.budget_usd), "period": tenant.budget_period,
                           "timezone": tenant.timezone}
    elif tenant.timezone != BUDGET.default("timezone"):  # no budget of its own, but its keys' periods follow it
        entry["budget"] = {"timezone": tenant.timezone}
    return entry


def decimal_text(value: Decimal) -> str:
    """Exact, without the column's padding: 0.150000 → "0.15", 10.000000 → "10.00" (never 1E+1)."""
    whole, _, fraction = f"{value:f}".partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"
