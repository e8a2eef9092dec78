"""Gateway API keys: issuing them, and finding the key behind a bearer token without Postgres.

Lookups are cached per process for EDGE_KEY_CACHE_TTL_S (a revoked key stops working within that
many seconds); unknown tokens are cached too, so a client hammering a bad key costs no queries.
A lookup asks the database through ``edge_project.db.run_bounded()`` (at most EDGE_DB_TIMEOUT_S).
While the database cannot answer, an entry is used stale for up to EDGE_KEY_STALE_S after the
database last confirmed it, negative ones included: a key known before an outage keeps working, one
refused before it stays refused; a key never seen is ``DatabaseUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal

from django.conf import settings

from apps.billing.limits import Subject, subjects_of
from edge_project.background import run_in_background
from edge_project.db import DatabaseUnavailable, database_failing, probe_due, run_bounded

if TYPE_CHECKING:
    from apps.billing.models import ApiKey

KEY_PREFIX = "sk-edge-"
# The scope that lets a key read its tenant's usage and costs (/v1/organization/...).
REPORTS_SCOPE = "reports"
SCOPES = (REPORTS_SCOPE,)
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
    subjects: tuple[Subject, ...] = ()  # the key's and its tenant's, if they limit anything (apps.billing.limits)
    scopes: frozenset[str] = frozenset()  # what the key may do beyond calling models, e.g. {"reports"}

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


class _Missing(enum.Enum):
    NOT_CACHED = "not cached"


NOT_CACHED: Final = _Missing.NOT_CACHED
Entry = tuple[float, float, KeyInfo | None]  # fresh until, usable stale until (monotonic), the answer


class KeyCache:
    """Bounded cache of key hash → KeyInfo (or None for unknown/inactive keys), one per process."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._loading: dict[str, asyncio.Future[KeyInfo | None]] = {}

    async def lookup(self, raw: str) -> KeyInfo | None:
        key_hash = hash_key(raw)
        found = self.fresh(key_hash)
        return await self.load(key_hash) if found is NOT_CACHED else found

    def fresh(self, key_hash: str) -> KeyInfo | Literal[_Missing.NOT_CACHED] | None:
        """The cached answer while it is fresh (no I/O), else NOT_CACHED: ``load()`` it."""
        cached = self._entries.get(key_hash)
        if cached is not None and cached[0] > time.monotonic():
            return cached[2]
        return NOT_CACHED

    async def load(self, key_hash: str) -> KeyInfo | None:
        """Ask the database; while it cannot answer, a stale answer if one may still be used, else
        ``DatabaseUnavailable``."""
        cached = self._entries.get(key_hash)
        stale = cached[2] if cached is not None and cached[1] > time.monotonic() else NOT_CACHED
        if stale is not NOT_CACHED and database_failing():
            if probe_due():  # from the background: this request does not wait for the answer
                run_in_background(self._refresh(key_hash))
            return stale  # no wait: the database is known to be failing
        try:
            info = await self._load_once(key_hash)
        except DatabaseUnavailable:
            if stale is not NOT_CACHED:
                return stale
            raise
        self._store(key_hash, info)
        return info

    async def _load_once(self, key_hash: str) -> KeyInfo | None:
        loading = self._loading.get(key_hash)
        if loading is not None:  # one query per key however many requests arrive together
            return await asyncio.shield(loading)
        future = self._loading[key_hash] = asyncio.get_running_loop().create_future()
        try:
            info = await run_bounded(lambda: load_key_info(key_hash))
            future.set_result(info)
        except BaseException as exc:
            _fail(future, exc)
            raise
        finally:
            del self._loading[key_hash]
        return info

    async def _refresh(self, key_hash: str) -> None:
        """Ask again, and keep the answer if there is one (the probe that finds the database back)."""
        with contextlib.suppress(DatabaseUnavailable):
            self._store(key_hash, await self._load_once(key_hash))

    def _store(self, key_hash: str, info: KeyInfo | None) -> None:
        confirmed = time.monotonic()  # by the database, just now
        fresh_until, stale_until = confirmed + settings.EDGE_KEY_CACHE_TTL_S, confirmed + settings.EDGE_KEY_STALE_S
        self._entries[key_hash] = (fresh_until, stale_until, info)
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

    key = ApiKey.objects.active().select_related("tenant").filter(key_hash=key_hash).first()
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
        scopes=scopes_of(key),
    )


def scopes_of(key: ApiKey) -> frozenset[str]:
    return frozenset({REPORTS_SCOPE}) if key.reports_scope else frozenset()


key_cache = KeyCache()
