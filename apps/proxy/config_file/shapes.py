"""The kinds of entry a config file holds: the fields each takes, and the model field each is stored in.

A field's default and bounds are its model field's (``edge_project.model_fields``), never written
here or in the parser: a file, admin and a row created in code agree by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model

from apps.billing.models import Tenant
from apps.providers.models import Provider
from apps.proxy.config_file.schema import LIMIT_FIELDS, ROUTING_FIELDS
from apps.routing.models import Deployment, PublicModel, RoutingPolicy
from edge_project.model_fields import Bounds, bounds_of, default_of, model_field


@dataclass(frozen=True, slots=True)
class EntryShape:
    fields: tuple[str, ...]
    model: type[Model]
    stored_as: Mapping[str, str] = field(default_factory=dict)  # file field → model field, where they differ
    not_stored: frozenset[str] = frozenset()  # fields with no column of their own (lists, secrets, sub-entries)

    def column(self, name: str) -> str | None:
        """The model field ``name`` is stored in, if it has one."""
        return None if name in self.not_stored else self.stored_as.get(name, name)

    def stored(self, name: str) -> str:
        column = self.column(name)
        if column is None:
            raise KeyError(f"{name} is not stored in a column of {self.model.__name__}")
        return column

    def has_default(self, name: str) -> bool:
        return model_field(self.model, self.stored(name)).has_default()

    def default(self, name: str) -> Any:
        return default_of(self.model, self.stored(name))

    def bounds(self, name: str) -> Bounds:
        return bounds_of(self.model, self.stored(name))


PROVIDER = EntryShape(
    fields=("name", "kind", "base_url", "api_key", "timeout_s", "headers", "enabled", "api_version"),
    model=Provider, stored_as={"headers": "extra_headers"}, not_stored=frozenset({"api_key"}),
)
POLICY = EntryShape(
    fields=("name", "strategy", "max_retries", *ROUTING_FIELDS, "fallbacks", "cache_enabled", "cache_ttl_s",
            "cache_shared_tenants"),
    model=RoutingPolicy,
)
MODEL = EntryShape(fields=("name", "policy", "enabled", "deployments"), model=PublicModel,
                   not_stored=frozenset({"deployments"}))
DEPLOYMENT = EntryShape(
    fields=("provider", "upstream_model", "input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok",
            "cache_write_usd_per_mtok", "max_output_tokens", "priority", "weight", "enabled"),
    model=Deployment,
)
TENANT = EntryShape(fields=("slug", "name", "active", "limits", "budget"), model=Tenant,
                    stored_as={"active": "is_active"}, not_stored=frozenset({"limits", "budget"}))
# A tenant's sub-entries: `limits: {rpm, tpm, max_parallel}` and `budget: {usd, period, timezone}`.
LIMITS = EntryShape(fields=LIMIT_FIELDS, model=Tenant)
BUDGET = EntryShape(fields=("usd", "period", "timezone"), model=Tenant,
                    stored_as={"usd": "budget_usd", "period": "budget_period"})

# The tables README's "Configuration as code" documents, by their headings there.
DOCUMENTED: Mapping[str, EntryShape] = {
    "providers[]": PROVIDER, "routing_policies[]": POLICY, "models[]": MODEL, "models[].deployments[]": DEPLOYMENT,
    "tenants[]": TENANT, "tenants[].limits": LIMITS, "tenants[].budget": BUDGET,
}
