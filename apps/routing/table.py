"""The routing table: every enabled model with its callable deployments, held in memory per process.

Requests read it without touching the database. It is reloaded in the background once it is older
than EDGE_CONFIG_TTL_S (requests meanwhile use the previous table), so a config change reaches
every process within about that many seconds and no request waits for a reload but the very first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings

from apps.billing.pricing import Prices
from apps.providers.contracts import Upstream
from apps.providers.models import Provider
from apps.providers.secrets import SecretUnreadable
from apps.routing.models import Deployment, PublicModel, RoutingPolicy
from edge_project.db import release_connection

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


@dataclass(frozen=True, slots=True)
class ModelRoute:
    name: str
    strategy: str
    max_retries: int
    targets: tuple[Target, ...]
    created: int  # Unix time, for OpenAI's model list
    # The policy's response cache settings (apps.proxy.cache); off unless the policy opts in.
    cache_enabled: bool = False
    cache_ttl_s: int = 0
    policy_id: int = 0
    cache_shared_tenants: frozenset[int] = frozenset()  # tenants sharing one namespace under this policy


@dataclass(frozen=True, slots=True)
class RoutingTable:
    routes: Mapping[str, ModelRoute]
    loaded_at: float

    def is_stale(self) -> bool:
        return time.monotonic() - self.loaded_at > settings.EDGE_CONFIG_TTL_S


def load_routing_table() -> RoutingTable:
    try:
        return _query_routing_table()
    finally:
        release_connection()


def _query_routing_table() -> RoutingTable:
    # Models before deployments: each query sees its own snapshot, and a model committed together with
    # its deployments between the two must not be served without them (a 503 until the next reload).
    models = list(PublicModel.objects.filter(enabled=True).select_related("policy"))
    deployments = (
        Deployment.objects.filter(enabled=True, model__enabled=True, provider__enabled=True)
        .select_related("provider")
        .order_by("priority", "id")
    )
    targets: dict[int, list[Target]] = {}
    upstreams: dict[int, Upstream | None] = {}
    for deployment in deployments:
        if deployment.provider_id not in upstreams:
            upstreams[deployment.provider_id] = _upstream(deployment.provider)
        upstream = upstreams[deployment.provider_id]
        if upstream is not None:
            targets.setdefault(deployment.model_id, []).append(_target(deployment, upstream))
    shared = _cache_shared_tenants()
    routes = {
        model.name: ModelRoute(
            name=model.name,
            strategy=model.policy.strategy,
            max_retries=model.policy.max_retries,
            targets=tuple(targets.get(model.pk, ())),
            created=int(model.created_at.timestamp()),
            cache_enabled=model.policy.cache_enabled,
            cache_ttl_s=model.policy.cache_ttl_s,
            policy_id=model.policy_id,
            cache_shared_tenants=shared.get(model.policy_id, frozenset()),
        )
        for model in models
    }
    return RoutingTable(routes=routes, loaded_at=time.monotonic())


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


def _target(deployment: Deployment, upstream: Upstream) -> Target:
    return Target(
        deployment_id=deployment.pk,
        upstream=upstream,
        upstream_model=deployment.upstream_model,
        prices=Prices(
            input_usd_per_mtok=deployment.input_usd_per_mtok,
            output_usd_per_mtok=deployment.output_usd_per_mtok,
            cached_input_usd_per_mtok=(
                deployment.cached_input_usd_per_mtok
                if deployment.cached_input_usd_per_mtok is not None
                else deployment.input_usd_per_mtok
            ),
        ),
        priority=deployment.priority,
        weight=deployment.weight,
    )


class TableHolder:
    """The process's current table, reloaded in the background when stale (one reload at a time)."""

    def __init__(self) -> None:
        self._table: RoutingTable | None = None
        self._reloading: asyncio.Task[None] | None = None

    async def current(self) -> RoutingTable:
        table = self._table
        if table is None:
            table = self._table = await sync_to_async(load_routing_table, thread_sensitive=False)()
        elif table.is_stale() and self._reloading is None:
            self._reloading = asyncio.create_task(self._reload())
        return table

    async def _reload(self) -> None:
        try:
            self._table = await sync_to_async(load_routing_table, thread_sensitive=False)()
        except Exception:
            logger.warning("routing table reload failed; serving the previous one", exc_info=True)
        finally:
            self._reloading = None

    def invalidate(self) -> None:
        """Forget the table: the next request loads a fresh one (tests, and this process's own edits)."""
        self._table = None


routing_tables = TableHolder()
