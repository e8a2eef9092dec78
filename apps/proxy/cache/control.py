"""What the policy and the request allow: read the cache, write it, and for how long.

The routing policy turns the cache on and sets the longest TTL. A request may narrow that:

- ``Cache-Control: no-cache``: do not answer from the cache (the fresh answer is still stored);
- ``Cache-Control: no-store``: do not store this answer;
- ``Cache-Control: max-age=N`` or ``x-edge-cache-ttl: N``: keep this answer N seconds at most
  (never longer than the policy says; 0 stores nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from apps.proxy.errors import InvalidRequest
from apps.routing.table import ModelRoute

TTL_HEADER = "x-edge-cache-ttl"


@dataclass(frozen=True, slots=True)
class CacheDirectives:
    read: bool
    write: bool
    ttl_s: int


def directives_for(request: HttpRequest, route: ModelRoute) -> CacheDirectives | None:
    """None when the route's policy has the cache off."""
    if not route.policy.cache_enabled:
        return None
    tokens = _cache_control(request.META.get("HTTP_CACHE_CONTROL", ""))
    ttl_s = route.policy.cache_ttl_s
    if (max_age := tokens.get("max-age")) is not None and max_age.isdigit():
        ttl_s = min(ttl_s, int(max_age))  # a malformed directive is ignored, as HTTP caches do
    if (header := request.META.get("HTTP_X_EDGE_CACHE_TTL")) is not None:
        ttl_s = min(ttl_s, _ttl_header(header))
    return CacheDirectives(read="no-cache" not in tokens, write="no-store" not in tokens and ttl_s > 0, ttl_s=ttl_s)


def _cache_control(header: str) -> dict[str, str | None]:
    tokens: dict[str, str | None] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            tokens[name.strip().lower()] = value.strip().strip('"') if value else None
    return tokens


def _ttl_header(value: str) -> int:
    if not value.strip().isdigit():
        raise InvalidRequest(
            f"Invalid {TTL_HEADER} header: expected a whole number of seconds, got {value!r}.",
            param=TTL_HEADER, code="invalid_cache_ttl",
        )
    return int(value)
