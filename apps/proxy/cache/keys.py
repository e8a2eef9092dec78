"""The cache key: SHA-256 of the tenant namespace, the generations, and the canonical request.

Canonical means the client's JSON with sorted keys, minus the fields that cannot change the answer
(whether it is streamed, who the end user is, bookkeeping labels). Everything else, including
parameters this gateway has never heard of, is part of the key: an unknown parameter may change
the answer, so two requests that differ in it must not share one. Differently ordered JSON gives
the same key; any other difference gives another.

The scope is the route's configured model (``ModelRoute.key``: ``claude-*`` for every name a pattern
serves) and its generation, so purging a model, exact or pattern, purges every answer it gave, and
answers never pass between two models' routes: when a disabled exact model's names fall to a
pattern, the pattern does not serve the exact model's answers (nor revive purged ones).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from apps.proxy.cache.generations import Generations, model_field, tenant_field
from apps.proxy.endpoint import ClientRequest
from apps.routing.table import ModelRoute
from edge_project.redis_clients import redis_key

# Bumped when the stored form changes, so a new release never reads an old one (v2: the stored usage
# keeps its cache-write tokens).
FORMAT = "v2:"
# Fields that shape delivery or bookkeeping, never the answer.
NOT_IN_KEY = frozenset({
    "stream", "stream_options", "user", "metadata", "store", "prompt_cache_key", "safety_identifier",
})


def cache_key(chat: ClientRequest, route: ModelRoute, tenant_id: int, generations: Generations) -> str:
    body = {name: value for name, value in chat.body.items() if name not in NOT_IN_KEY}
    scope = [*namespace(route, tenant_id, generations), route.key, generations.of(model_field(route.key))]
    canonical = orjson.dumps([scope, body], option=orjson.OPT_SORT_KEYS)
    # The braces are a Redis Cluster hash tag: an entry and its flight lock live in one slot.
    return redis_key("cache", FORMAT + "{" + hashlib.sha256(canonical).hexdigest() + "}")


def namespace(route: ModelRoute, tenant_id: int, generations: Generations) -> list[Any]:
    """A tenant's own namespace, or its policy's shared one if the policy opted the tenant in.

    A shared namespace carries every member's generation, so purging any member purges it.
    """
    if tenant_id not in route.policy.cache_shared_tenants:
        return ["tenant", tenant_id, generations.of(tenant_field(tenant_id))]
    members = sorted(route.policy.cache_shared_tenants)
    return ["shared", route.policy.policy_id, [[member, generations.of(tenant_field(member))] for member in members]]
