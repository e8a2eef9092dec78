"""Step 1 of every API request: the bearer key → the key and tenant it belongs to."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone

from apps.billing.keys import KeyInfo, key_cache
from apps.proxy.errors import InvalidApiKey


async def authenticate(request: HttpRequest) -> KeyInfo:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    # The Anthropic SDK sends its key as x-api-key; the same gateway keys work either way.
    token = token or request.headers.get("x-api-key", "").strip()
    if not token:
        raise InvalidApiKey(
            "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.", code="missing_api_key"
        )
    key = await key_cache.lookup(token)
    # Expiry is checked here too: a cached key must not outlive its expiry by the cache TTL.
    if key is None or key.is_expired(timezone.now()):
        raise InvalidApiKey("Incorrect API key provided, or the key was revoked or has expired.")
    return key
