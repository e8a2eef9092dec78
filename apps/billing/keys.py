"""Gateway API keys: issuing them, and finding the key behind a bearer token without Postgres.

Lookups are cached per process for EDGE_KEY_CACHE_TTL_S (a revoked key stops working within that
many seconds); unknown tokens are cached too, so a client hammering a bad key costs no queries.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings

from apps.billing.limits import Subject, subjects_of
from edge_project.db import release_connection

KEY_PREFIX = "sk-edge-"
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8
_MAX_CACHED = 50_000


@dataclass(frozen=True, slots=True)
class IssuedKey:
    raw: str
    prefix: str
    key_hash: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the request path needs to know about a valid key."""

    key_id: int
    prefix: str
    tenant_id: int
    tenant_slug: str
    allowed_models: frozenset[str]  # empty: every model
    expires_at: datetime | None
    subjects: tuple[Subject, ...] = ()  # the key's and its tenant's limits and budgets (apps.billing.limits)

    def may_use(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def issue_key() -> IssuedKey:
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    return IssuedKey(raw=raw, prefix=raw[:DISPLAY_PREFIX_LENGTH], key_hash=hash_key(raw))


def hash_key(raw: str) -> str:
    # A fast hash is right here: keys carry 256 random bits, so there is nothing to brute-force.
    return hashlib.sha256(raw.encode()).hexdigest()


class KeyCache:
    """Bounded TTL cache of key hash → KeyInfo (or None for unknown/inactive keys), one per process."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, KeyInfo | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[KeyInfo | None]] = {}

    async def lookup(self, raw: str) -> KeyInfo | None:
        key_hash = hash_key(raw)
        cached = self._entries.get(key_hash)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        loading = self._loading.get(key_hash)
        if loading is not None:  # one query per key however many requests arrive together
            return await asyncio.shield(loading)
        future = self._loading[key_hash] = asyncio.get_running_loop().create_future()
        try:
            info = await sync_to_async(load_key_info)(key_hash)
            future.set_result(info)
        except BaseException as exc:
            _fail(future, exc)
            raise
        finally:
            del self._loading[key_hash]
        self._store(key_hash, info)
        return info

    def _store(self, key_hash: str, info: KeyInfo | None) -> None:
        self._entries[key_hash] = (time.monotonic() + settings.EDGE_KEY_CACHE_TTL_S, info)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > _MAX_CACHED:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def _fail(future: asyncio.Future[KeyInfo | None], exc: BaseException) -> None:
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)
        future.exception()  # mark retrieved: the waiters re-raise it; nobody should log it as lost


def load_key_info(key_hash: str) -> KeyInfo | None:
    from apps.billing.models import ApiKey

    try:
        key = ApiKey.objects.active().select_related("tenant").filter(key_hash=key_hash).first()
    finally:
        release_connection()
    if key is None:
        return None
    return KeyInfo(
        key_id=key.pk,
        prefix=key.prefix,
        tenant_id=key.tenant_id,
        tenant_slug=key.tenant.slug,
        allowed_models=frozenset(key.allowed_models or ()),
        expires_at=key.expires_at,
        subjects=subjects_of(key),
    )


key_cache = KeyCache()
