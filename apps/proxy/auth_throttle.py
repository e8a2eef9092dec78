"""Failed authentications, throttled per client address (fail2ban-like), before any key lookup.

An address that has failed EDGE_AUTH_FAILURES_MAX key checks (unknown, revoked or expired keys)
within EDGE_AUTH_FAILURES_WINDOW_S of its first failure is refused with a 429 until that window
ends, whatever key it sends, valid ones included, and without a database query. Key lookups still
in flight count against the address until they succeed, so a burst of random keys sent at once
cannot outrun the count. IPv6 clients are counted per /64, the block one subscriber usually holds;
a client without an address (a Unix socket's) is not counted: it would stand for every client.

Counting is in-process, and shared through Redis when there is one: each failure adds to a
counter under the address (one round trip, off the response's path), and its total (every
process's failures) comes back into this process's count. A valid key from an address in good
standing costs a dictionary lookup, never a Redis call.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import redis.asyncio
from django.conf import settings

from apps.providers.errors import OpenAIError
from apps.proxy.client_address import parse_address
from edge_project.background import run_in_background
from edge_project.redis_clients import bounded, redis_configured, redis_key

MAX_ADDRESSES = 100_000  # the oldest are forgotten beyond this: memory stays bounded whoever sends
# Adds a failure and returns the total with the milliseconds left in the window (started by the first).
_COUNT = """
local failures = redis.call('incr', KEYS[1])
if failures == 1 then redis.call('pexpire', KEYS[1], ARGV[1]) end
return {failures, redis.call('pttl', KEYS[1])}
"""


class TooManyFailedAuthentications(OpenAIError):
    status = 429
    type = "rate_limit_error"
    code = "too_many_failed_authentications"

    def __init__(self, retry_after_s: float) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(
            f"Too many failed authentications from this address; retry in {seconds} s.",
            headers={"Retry-After": str(seconds), "retry-after-ms": str(seconds * 1000)},
        )


@dataclass(slots=True)
class _Standing:
    window_ends: float  # monotonic
    failures: int = 0
    in_flight: int = 0  # key lookups under way: failures until they succeed


class AuthThrottle:
    """This process's count of failed authentications per client address."""

    def __init__(self) -> None:
        self._standings: OrderedDict[str, _Standing] = OrderedDict()

    def check(self, address: str) -> None:
        """Refuse an address that has used up its failures (no I/O: called on every request)."""
        standing = self._standings.get(bucket(address)) if self._standings and address else None
        if standing is not None and standing.failures >= settings.EDGE_AUTH_FAILURES_MAX > 0:
            left_s = standing.window_ends - time.monotonic()
            if left_s > 0:
                raise TooManyFailedAuthentications(left_s)

    def begin_lookup(self, address: str) -> None:
        """A key lookup is about to ask the database: it counts as a failure until ``end_lookup()``."""
        limit = settings.EDGE_AUTH_FAILURES_MAX
        if limit <= 0 or not address:
            return
        standing = self._current(bucket(address))
        if standing.failures + standing.in_flight >= limit:
            raise TooManyFailedAuthentications(standing.window_ends - time.monotonic())
        standing.in_flight += 1

    def end_lookup(self, address: str) -> None:
        standing = self._standings.get(bucket(address)) if settings.EDGE_AUTH_FAILURES_MAX > 0 and address else None
        if standing is not None and standing.in_flight > 0:
            standing.in_flight -= 1

    def failed(self, address: str) -> None:
        """A key check failed: count it here now, and in Redis from the background."""
        if settings.EDGE_AUTH_FAILURES_MAX <= 0 or not address:
            return
        key = bucket(address)
        self._current(key).failures += 1
        if redis_configured():
            run_in_background(self._share(key))

    def _current(self, key: str) -> _Standing:
        now = time.monotonic()
        standing = self._standings.get(key)
        if standing is None or standing.window_ends <= now:  # a new window; lookups under way stay counted
            in_flight = standing.in_flight if standing is not None else 0
            standing = _Standing(window_ends=now + settings.EDGE_AUTH_FAILURES_WINDOW_S, in_flight=in_flight)
            self._standings.pop(key, None)
            self._standings[key] = standing  # at the end: the oldest windows are forgotten first
            while len(self._standings) > MAX_ADDRESSES:
                self._standings.popitem(last=False)
        return standing

    async def _share(self, key: str) -> None:
        window_ms = max(1, round(settings.EDGE_AUTH_FAILURES_WINDOW_S * 1000))

        async def count(client: redis.asyncio.Redis) -> tuple[int, int]:
            failures, left_ms = await client.eval(_COUNT, 1, redis_key("auth-failures", key), window_ms)
            return int(failures), int(left_ms)

        shared = await bounded(count)
        standing = self._standings.get(key)
        if shared is None or standing is None:
            return
        failures, left_ms = shared
        if failures > standing.failures:  # other processes' failures: the window is theirs too
            standing.failures = failures
            standing.window_ends = time.monotonic() + max(left_ms, 0) / 1000


@functools.lru_cache(maxsize=4096)  # check() asks on every request while any address has failures
def bucket(address: str) -> str:
    """What an address is counted under: itself, or its /64 for IPv6."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed) if parsed is not None else address


auth_throttle = AuthThrottle()
