"""Builders for the configuration and keys tests need. Names are unique per call, so tests that
share a live gateway (and its cached routing table) never see each other's models."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from apps.billing.keys import issue_key
from apps.billing.models import ApiKey, Tenant
from apps.providers.models import Provider
from apps.routing.models import Deployment, PublicModel, RoutingPolicy
from apps.routing.price_versions import ensure_price_version

_sequence = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_sequence)}"


def make_tenant(slug: str | None = None) -> Tenant:
    slug = slug or unique("tenant")
    return Tenant.objects.create(slug=slug, name=slug.title())


def make_key(
    tenant: Tenant, *, allowed_models: list[str] | None = None, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    issued = issue_key()
    key = ApiKey.objects.create(
        tenant=tenant, name="test", prefix=issued.prefix, key_hash=issued.key_hash,
        allowed_models=allowed_models or [], expires_at=expires_at,
    )
    return key, issued.raw


def make_provider(
    base_url: str, *, kind: str = "openai", api_key: str = "sk-upstream", timeout_s: float = 10, api_version: str = ""
) -> Provider:
    provider = Provider(name=unique("provider"), kind=kind, base_url=base_url, timeout_s=timeout_s,
                        api_version=api_version)
    provider.set_api_key(api_key)
    provider.save()
    return provider


@dataclass
class Route:
    model: PublicModel
    deployment: Deployment
    provider: Provider


def make_route(
    base_url: str,
    *,
    upstream_model: str = "mock-model",
    input_price: str = "0.15",
    output_price: str = "0.60",
    cached_price: str | None = None,
    cache_write_price: str | None = None,
    strategy: str = "failover",
    max_retries: int = 0,
    kind: str = "openai",
    api_version: str = "",
    cache_ttl_s: int | None = None,
    name: str | None = None,
    **policy_options: Any,
) -> Route:
    """A public model (``name``, or a new one) served by one deployment on a new provider of ``kind`` at
    ``base_url`` (…/v1); its policy caches responses for ``cache_ttl_s`` seconds (None: the cache is
    off, the default) and takes any other RoutingPolicy field from ``policy_options``."""
    provider = make_provider(base_url, kind=kind, api_version=api_version)
    policy = RoutingPolicy.objects.create(
        name=unique("policy"), strategy=strategy, max_retries=max_retries,
        cache_enabled=cache_ttl_s is not None, cache_ttl_s=cache_ttl_s or 3600, **policy_options,
    )
    model = PublicModel.objects.create(name=name or unique("model"), policy=policy)
    deployment = Deployment.objects.create(
        model=model, provider=provider, upstream_model=upstream_model,
        input_usd_per_mtok=Decimal(input_price), output_usd_per_mtok=Decimal(output_price),
        cached_input_usd_per_mtok=Decimal(cached_price) if cached_price is not None else None,
        cache_write_usd_per_mtok=Decimal(cache_write_price) if cache_write_price is not None else None,
    )
    ensure_price_version(deployment=deployment, note="test route")  # as admin and edge_apply do
    return Route(model=model, deployment=deployment, provider=provider)
