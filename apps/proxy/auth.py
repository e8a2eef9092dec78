"""Step 1 of every API request: the bearer key → the key and tenant it belongs to.

An address with too many failed key checks is refused first, before any lookup (``auth_throttle``).
A key whose answer is cached and fresh costs no I/O at all; a cold one asks the database (bounded,
and answered stale while the database cannot answer: ``apps.billing.keys``).
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone

from apps.billing.keys import NOT_CACHED, KeyInfo, hash_key, key_cache
from apps.proxy.auth_throttle import auth_throttle
from apps.proxy.client_address import client_address
from apps.proxy.errors import InvalidApiKey


async def authenticate(request: HttpRequest) -> KeyInfo:
    address = client_address(request)
    auth_throttle.check(address)
    key_hash = hash_key(bearer_token(request))
    key = key_cache.fresh(key_hash)
    if key is NOT_CACHED:
        auth_throttle.begin_lookup(address)
        try:
            key = await key_cache.load(key_hash)
        finally:
            auth_throttle.end_lookup(address)
    # Expiry is checked here too: a cached key must not outlive its expiry by the cache TTL.
    if key is None or key.is_expired(timezone.now()):
        auth_throttle.failed(address)
        raise InvalidApiKey("Incorrect API key provided, or the key was revoked or has expired.")
    return key


def bearer_token(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    # The Anthropic SDK sends its key as x-api-key; the same gateway keys work either way.
    token = token or request.headers.get("x-api-key", "").strip()
    if not token:
        raise InvalidApiKey(
            "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.", code="missing_api_key"
        )
    return token
