"""The validated configuration document: what edge_apply writes and edge_export reads back.

Every value here has been checked and converted (prices are Decimals, references name something that
exists), so the writing layer never has to doubt its input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

# Top-level sections in the order they are written: a section refers only to sections above it.
SECTIONS = ("providers", "routing_policies", "models", "tenants")


class ConfigError(Exception):
    """The file cannot be applied. Carries every problem found, each naming its entry and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors

    def render(self, source: str) -> str:
        count = len(self.errors)
        heading = f"{source}: {count} error{'s' if count != 1 else ''}, nothing was applied"
        return "\n".join([heading, *(f"  {error}" for error in self.errors)])


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    kind: str
    base_url: str
    api_key: str | None  # None: keep whatever key is stored
    timeout_s: float
    headers: Mapping[str, str]
    enabled: bool
    api_version: str  # Azure OpenAI's api-version; "" for the gateway's default


@dataclass(frozen=True, slots=True)
class PolicySpec:
    name: str
    strategy: str
    max_retries: int
    # Retries, failover, breakers and deadlines: named as on RoutingPolicy, whose defaults the parser uses.
    same_deployment_retries: int
    backoff_start_ms: int
    backoff_multiplier: float
    backoff_cap_s: float
    retry_after_cap_s: float
    retry_budget_ratio: float
    request_deadline_s: float
    stream_idle_timeout_s: float
    stream_deadline_s: float
    breaker_failure_threshold: int
    breaker_reset_s: float
    breaker_success_threshold: int
    hybrid_cost_weight: float
    hybrid_latency_weight: float
    hybrid_reliability_weight: float
    fallbacks: Mapping[str, tuple[str, ...]]
    # The response cache.
    cache_enabled: bool
    cache_ttl_s: int
    cache_shared_tenants: tuple[str, ...]  # tenant slugs, from this file or the database

    def routing_values(self) -> dict[str, object]:
        """The routing fields as RoutingPolicy stores them."""
        values: dict[str, object] = {name: getattr(self, name) for name in ROUTING_FIELDS}
        values["fallbacks"] = {code: list(names) for code, names in self.fallbacks.items()}
        return values


ROUTING_FIELDS = (
    "same_deployment_retries", "backoff_start_ms", "backoff_multiplier", "backoff_cap_s", "retry_after_cap_s",
    "retry_budget_ratio", "request_deadline_s", "stream_idle_timeout_s", "stream_deadline_s",
    "breaker_failure_threshold", "breaker_reset_s", "breaker_success_threshold",
    "hybrid_cost_weight", "hybrid_latency_weight", "hybrid_reliability_weight",
)  # fallbacks are routing too, but a mapping of tuples: routing_values() and export convert them


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    provider: str
    upstream_model: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    cached_input_usd_per_mtok: Decimal | None
    cache_write_usd_per_mtok: Decimal | None
    max_output_tokens: int | None  # None: EDGE_DEFAULT_MAX_OUTPUT_TOKENS
    priority: int
    weight: int
    enabled: bool

    @property
    def identity(self) -> tuple[str, str]:
        """What makes a deployment the same one across applies (the database's unique constraint)."""
        return (self.provider, self.upstream_model)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    policy: str
    enabled: bool
    deployments: tuple[DeploymentSpec, ...]  # the complete set: others are removed


LIMIT_FIELDS = ("rpm", "tpm", "max_parallel")  # named as on apps.billing.models.Limited


@dataclass(frozen=True, slots=True)
class TenantSpec:
    slug: str
    name: str
    active: bool
    # Rate limits and budget (None: unlimited), as Tenant stores them.
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    budget_usd: Decimal | None
    budget_period: str
    timezone: str

    def stored_values(self) -> dict[str, object]:
        """Every field as Tenant stores it."""
        return {
            "name": self.name, "is_active": self.active, "rpm": self.rpm, "tpm": self.tpm,
            "max_parallel": self.max_parallel, "budget_usd": self.budget_usd, "budget_period": self.budget_period,
            "timezone": self.timezone,
        }


@dataclass(frozen=True, slots=True)
class ConfigDocument:
    providers: tuple[ProviderSpec, ...] = ()
    routing_policies: tuple[PolicySpec, ...] = ()
    models: tuple[ModelSpec, ...] = ()
    tenants: tuple[TenantSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class KnownNames:
    """Names already in the database that file entries may refer to without declaring them."""

    providers: frozenset[str] = frozenset()
    routing_policies: frozenset[str] = frozenset()
    tenants: frozenset[str] = frozenset()
