"""The routing table: every enabled model with its callable deployments, held in memory per process.

Requests read it without touching the database. A model name may be a pattern (``claude-*``, ``*``):
``find()`` prefers an exact name, then the most specific pattern (the one with most literal
characters), and a deployment whose upstream model is ``*`` sends the client's model name.

The table is reloaded in the background once it is older than EDGE_CONFIG_TTL_S (requests meanwhile
use the previous table), so a config change reaches every process within about that many seconds
and no request waits for a reload but the very first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.providers.contracts import Upstream
from apps.providers.models import Provider
from apps.providers.secrets import SecretUnreadable
from apps.routing.models import BreakerOverride, Deployment, PublicModel, RoutingPolicy
from apps.routing.price_schedule import next_change, or_input_price, price_schedules
from apps.routing.prices import Prices, prices_at
from edge_project.db import DatabaseUnavailable, release_connection, run_bounded
from edge_project.model_fields import default_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment, ready to call."""

    deployment_id: int
    upstream: Upstream
    upstream_model: str
    prices: Prices
    priority: int
    weight: int
    breaker_override: str = BreakerOverride.AUTO.value
    max_output_tokens: int | None = None  # what a request that sets no cap may generate here (None: the default)
    # The price versions a request served now may have arrived under, ascending: the one in effect when the
    # table was loaded (``prices``, which ranking and admission use), the one before it (a request still in
    # flight across a change) and every future one. Empty: ``prices`` whatever the time.
    price_schedule: tuple[Prices, ...] = ()

    def prices_at(self, moment: datetime) -> Prices:
        """The prices of a request that arrived at ``moment``: the version in effect then."""
        return prices_at(self.price_schedule, moment) if self.price_schedule else self.prices

    @property
    def label(self) -> str:
        """How responses and the ledger name this deployment: provider/upstream model, no secrets."""
        return f"{self.upstream.provider_name}/{self.upstream_model}"


def _default(field: str) -> Any:
    return default_of(RoutingPolicy, field)


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """A routing policy's knobs as requests use them (seconds as floats; see RoutingPolicy, whose
    defaults these are)."""

    same_deployment_retries: int = _default("same_deployment_retries")
    backoff_start_s: float = _default("backoff_start_ms") / 1000
    backoff_multiplier: float = _default("backoff_multiplier")
    backoff_cap_s: float = _default("backoff_cap_s")
    retry_after_cap_s: float = _default("retry_after_cap_s")
    retry_budget_ratio: float = _default("retry_budget_ratio")
    request_deadline_s: float = _default("request_deadline_s")
    stream_idle_timeout_s: float = _default("stream_idle_timeout_s")
    stream_deadline_s: float = _default("stream_deadline_s")
    breaker_failure_threshold: int = _default("breaker_failure_threshold")
    breaker_reset_s: float = _default("breaker_reset_s")
    breaker_success_threshold: int = _default("breaker_success_threshold")
    hybrid_weights: tuple[float, float, float] = (  # cost, latency, reliability
        _default("hybrid_cost_weight"), _default("hybrid_latency_weight"), _default("hybrid_reliability_weight"),
    )
    # The response cache (apps.proxy.cache): off unless the policy opts in.
    policy_id: int = 0
    cache_enabled: bool = _default("cache_enabled")
    cache_ttl_s: int = _default("cache_ttl_s")
    cache_shared_tenants: frozenset[int] = frozenset()  # tenants sharing one namespace under this policy


DEFAULT_POLICY = RoutePolicy()


@dataclass(frozen=True, slots=True)
class ModelRoute:
    name: str
    strategy: str
    max_retries: int
    targets: tuple[Target, ...]
    created: int  # Unix time, for OpenAI's model list
    policy: RoutePolicy = DEFAULT_POLICY
    # Error code (or "default") → routes tried after this one's deployments fail; one level deep.
    fallbacks: tuple[tuple[str, tuple[ModelRoute, ...]], ...] = ()
    pattern: str = ""  # for a route found by pattern: the configured name it matched

    @property
    def key(self) -> str:
        """The configured name: per-route state is kept under it, never under a client's model name."""
        return self.pattern or self.name

    def fallbacks_for(self, code: str | None) -> tuple[ModelRoute, ...]:
        named = dict(self.fallbacks)
        return named.get(code or "", ()) or named.get("default", ())

    def reachable_targets(self) -> tuple[Target, ...]:
        """Every deployment a request to this route may be served by: its own, then its fallbacks'."""
        fallbacks = (target for _, routes in self.fallbacks for route in routes for target in route.targets)
        return (*self.targets, *fallbacks)

    def route_of(self, target: Target) -> ModelRoute:
        """This route, or the fallback ``target`` belongs to: its policy governs the attempt (a deployment
        belongs to one model, so the answer is unique)."""
        for route in (self, *(fallback for _, fallbacks in self.fallbacks for fallback in fallbacks)):
            if any(own.deployment_id == target.deployment_id for own in route.targets):
                return route
        return self

    def for_model(self, model: str) -> ModelRoute:
        """This route as the client's model names it: pattern routes send that name upstream for ``*``."""
        if model == self.name or not any(target.upstream_model == "*" for target in self.targets):
            return self
        targets = tuple(
            dataclasses.replace(target, upstream_model=model) if target.upstream_model == "*" else target
            for target in self.targets
        )
        return dataclasses.replace(self, name=model, targets=targets, pattern=self.name)


@dataclass(frozen=True, slots=True)
class RoutingTable:
    routes: Mapping[str, ModelRoute]  # concrete names only: what /v1/models lists
    loaded_at: float
    patterns: tuple[ModelRoute, ...] = field(default=())  # most specific first
    prices_change_at: float | None = None  # Unix time of the next price version to take effect, if any

    def is_stale(self) -> bool:
        """Older than EDGE_CONFIG_TTL_S, or a price version took effect since it was loaded (requests are
        costed right either way: this brings ranking and admission's worst case up to date)."""
        if self.prices_change_at is not None and time.time() >= self.prices_change_at:
            return True
        return time.monotonic() - self.loaded_at > settings.EDGE_CONFIG_TTL_S

    def find(self, model: str) -> ModelRoute | None:
        route = self.routes.get(model)
        if route is not None:
            return route
        for pattern in self.patterns:
            if fnmatchcase(model, pattern.name):
                return pattern.for_model(model)
        return None

    def deployment_ids(self) -> list[int]:
        routes = (*self.routes.values(), *self.patterns)
        return sorted({target.deployment_id for route in routes for target in route.targets})


def is_pattern(name: str) -> bool:
    return any(character in name for character in "*?[")


def _specificity(name: str) -> tuple[int, str]:
    return (-sum(character not in "*?[]" for character in name), name)


def load_routing_table() -> RoutingTable:
    try:
        return query_routing_table()
    finally:
        release_connection()


def query_routing_table() -> RoutingTable:
    # Models before deployments: each query sees its own snapshot, and a model committed together with
    # its deployments between the two must not be served without them (a 503 until the next reload).
    models = list(PublicModel.objects.filter(enabled=True).select_related("policy"))
    deployments = (
        Deployment.objects.filter(enabled=True, model__enabled=True, provider__enabled=True)
        .select_related("provider")
        .order_by("priority", "id")
    )
    now = timezone.now()
    schedules = price_schedules(now)
    targets: dict[int, list[Target]] = {}
    upstreams: dict[int, Upstream | None] = {}
    for deployment in deployments:
        if deployment.provider_id not in upstreams:
            upstreams[deployment.provider_id] = _upstream(deployment.provider)
        upstream = upstreams[deployment.provider_id]
        if upstream is not None:
            schedule = schedules.get(deployment.pk, ())
            targets.setdefault(deployment.model_id, []).append(_target(deployment, upstream, schedule, now))
    shared = _cache_shared_tenants()
    first_pass = {model.name: _route(model, tuple(targets.get(model.pk, ())), shared) for model in models}
    every = {model.name: _with_fallbacks(first_pass[model.name], model.policy, first_pass) for model in models}
    return RoutingTable(
        routes={name: route for name, route in every.items() if not is_pattern(name)},
        patterns=tuple(every[name] for name in sorted(filter(is_pattern, every), key=_specificity)),
        loaded_at=time.monotonic(),
        prices_change_at=next_change(schedules, now),
    )


def _route(model: PublicModel, targets: tuple[Target, ...], shared: Mapping[int, frozenset[int]]) -> ModelRoute:
    return ModelRoute(
        name=model.name,
        strategy=model.policy.strategy,
        max_retries=model.policy.max_retries,
        targets=targets,
        created=int(model.created_at.timestamp()),
        policy=route_policy(model.policy, shared.get(model.policy_id, frozenset())),
    )


def route_policy(policy: RoutingPolicy, cache_shared_tenants: frozenset[int] = frozenset()) -> RoutePolicy:
    return RoutePolicy(
        same_deployment_retries=policy.same_deployment_retries,
        backoff_start_s=policy.backoff_start_ms / 1000,
        backoff_multiplier=policy.backoff_multiplier,
        backoff_cap_s=policy.backoff_cap_s,
        retry_after_cap_s=policy.retry_after_cap_s,
        retry_budget_ratio=policy.retry_budget_ratio,
        request_deadline_s=policy.request_deadline_s,
        stream_idle_timeout_s=policy.stream_idle_timeout_s,
        stream_deadline_s=policy.stream_deadline_s,
        breaker_failure_threshold=policy.breaker_failure_threshold,
        breaker_reset_s=policy.breaker_reset_s,
        breaker_success_threshold=policy.breaker_success_threshold,
        hybrid_weights=(policy.hybrid_cost_weight, policy.hybrid_latency_weight, policy.hybrid_reliability_weight),
        policy_id=policy.pk,
        cache_enabled=policy.cache_enabled,
        cache_ttl_s=policy.cache_ttl_s,
        cache_shared_tenants=cache_shared_tenants,
    )


def _with_fallbacks(route: ModelRoute, policy: RoutingPolicy, routes: Mapping[str, ModelRoute]) -> ModelRoute:
    """Fallback names resolved to routes (unknown or disabled ones are skipped; a model never falls back to itself)."""
    named = policy.fallbacks if isinstance(policy.fallbacks, dict) else {}
    resolved = tuple(
        (str(code), tuple(routes[name] for name in names if name in routes and name != route.name))
        for code, names in sorted(named.items()) if isinstance(names, list)
    )
    return dataclasses.replace(route, fallbacks=resolved) if resolved else route


def _cache_shared_tenants() -> dict[int, frozenset[int]]:
    """Policy id → the tenants it puts in one shared cache namespace (one query for all policies)."""
    shared: dict[int, set[int]] = {}
    through = RoutingPolicy.cache_shared_tenants.through.objects.values_list("routingpolicy_id", "tenant_id")
    for policy_id, tenant_id in through:
        shared.setdefault(policy_id, set()).add(tenant_id)
    return {policy_id: frozenset(tenants) for policy_id, tenants in shared.items()}


def _upstream(provider: Provider) -> Upstream | None:
    try:
        api_key = provider.api_key()
    except SecretUnreadable:
        logger.error("provider %s: API key cannot be decrypted with EDGE_ENCRYPTION_KEYS; skipped", provider.name)
        return None
    return Upstream(
        provider_id=provider.pk,
        provider_name=provider.name,
        kind=provider.kind,
        base_url=provider.base_url,
        api_key=api_key,
        headers={str(name): str(value) for name, value in (provider.extra_headers or {}).items()},
        timeout_s=provider.timeout_s,
        api_version=provider.api_version,
    )


def _target(deployment: Deployment, upstream: Upstream, schedule: tuple[Prices, ...], now: datetime) -> Target:
    """A deployment without versions (rows written by hand, not through set_prices) is costed at its own
    prices, with no version to name."""
    prices = prices_at(schedule, now) if schedule else Prices(
        input_usd_per_mtok=deployment.input_usd_per_mtok,
        output_usd_per_mtok=deployment.output_usd_per_mtok,
        cached_input_usd_per_mtok=or_input_price(deployment.cached_input_usd_per_mtok, deployment.input_usd_per_mtok),
        cache_write_usd_per_mtok=or_input_price(deployment.cache_write_usd_per_mtok, deployment.input_usd_per_mtok),
    )
    return Target(
        deployment_id=deployment.pk,
        upstream=upstream,
        upstream_model=deployment.upstream_model,
        prices=prices,
        priority=deployment.priority,
        weight=deployment.weight,
        breaker_override=deployment.breaker_override,
        max_output_tokens=deployment.max_output_tokens,
        price_schedule=schedule if len(schedule) > 1 else (),
    )


class TableHolder:
    """The process's current table, reloaded in the background when stale (one reload at a time).

    Loads go through ``edge_project.db.run_bounded()``: a process's first table waits at most
    EDGE_DB_TIMEOUT_S (then ``DatabaseUnavailable``, and the next request tries again); a failed
    reload keeps the previous table, and while the database is failing each reload is the probe
    that finds it back.
    """

    def __init__(self) -> None:
        self._table: RoutingTable | None = None
        self._reloading: asyncio.Task[None] | None = None

    async def current(self) -> RoutingTable:
        table = self._table
        if table is None:
            table = self._table = await run_bounded(query_routing_table)
        elif table.is_stale() and self._reloading is None:
            self._reloading = asyncio.create_task(self._reload())
        return table

    async def _reload(self) -> None:
        try:
            self._table = await run_bounded(query_routing_table)
        except DatabaseUnavailable as exc:
            logger.debug("routing table reload failed; serving the previous one: %s", exc)
        except Exception:
            logger.warning("routing table reload failed; serving the previous one", exc_info=True)
        finally:
            self._reloading = None

    def deployment_ids(self) -> list[int]:
        """Every deployment of the current table (the shared-state refresh asks for this each round)."""
        return self._table.deployment_ids() if self._table is not None else []

    def invalidate(self) -> None:
        """Forget the table: the next request loads a fresh one (tests, and this process's own edits)."""
        self._table = None


routing_tables = TableHolder()
