"""The cache step of the pipeline: ``look_up_cache()`` before the provider, ``store*()`` after it.

Lookup goes L1 → (an identical request already in flight: wait for it, within the request's deadline,
briefly for a stream; see flight.py) → L2 → provider. A hit
skips routing's call entirely and is accounted at zero cost, with the cost it avoided. A miss that
may be stored leads a flight: identical requests arriving meanwhile wait for its answer instead of
calling the provider too. The answer goes into L1 at once and into L2 from a background task off
the response path (``edge_project.background``: shutdown lets them finish, failures are logged).
Only complete, successful answers are stored: errors, cut or cancelled streams never are.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.billing.models import LedgerEntry
from apps.proxy.cache import flight, redis_tier
from apps.proxy.cache.assemble import StreamAssembler
from apps.proxy.cache.control import directives_for
from apps.proxy.cache.flight import flights
from apps.proxy.cache.generations import generations
from apps.proxy.cache.keys import cache_key
from apps.proxy.cache.lru import local_cache
from apps.proxy.cache.purge import generations_loaded, stop_listening
from apps.proxy.cache.replay import replay_stream
from apps.proxy.cache.stored import CachedAnswer
from apps.proxy.endpoint import ClientRequest
from apps.proxy.exchange import Exchange
from apps.proxy.metrics import observe
from apps.routing.attempts import deadline_exceeded
from apps.routing.table import ModelRoute
from edge_project.background import run_in_background
from edge_project.tracing import traced

Status = LedgerEntry.CacheStatus
# A waiter left with less of its deadline than this answers 504 at once: an attempt that short could
# only time out, and would count against a deployment that did nothing wrong.
MIN_ATTEMPT_S = 0.05


@dataclass(slots=True)
class CacheLookup:
    """What the lookup found, and what the pipeline owes the cache once the provider has answered."""

    hit: CachedAnswer | None = None
    key: str = ""
    write: bool = False
    ttl_s: int = 0
    leads: bool = False  # this request leads the in-process flight for its key
    lock_token: str | None = None  # the cross-process flight lock it holds ("" without Redis)
    assembler: StreamAssembler | None = field(default=None)
    landed: bool = False
    waited: bool = False  # for an identical request in flight, in this process or another

    def store(self, content: bytes, exchange: Exchange) -> None:
        """A complete non-streamed answer (after the ledger row, which prices it). The adapter has
        checked it is a completion; an answer larger than EDGE_CACHE_MAX_ENTRY_BYTES is not kept."""
        self._land(self._answer(content, exchange))

    def capture(self) -> StreamAssembler | None:
        """For a stream this request will store: the assembler its relay feeds every frame."""
        if self.write and self.assembler is None:
            self.assembler = StreamAssembler()
        return self.assembler

    def store_stream(self, exchange: Exchange, *, completed: bool) -> None:
        content = self.assembler.completion() if completed and self.assembler is not None else None
        self._land(self._answer(content, exchange) if content is not None else None)

    def abandon(self) -> None:
        """The request ended without storing (an error, a client gone): wake its waiters."""
        self._land(None)

    def _answer(self, content: bytes, exchange: Exchange) -> CachedAnswer | None:
        if not self.write or len(content) > settings.EDGE_CACHE_MAX_ENTRY_BYTES:
            return None
        return CachedAnswer(content=content, usage=exchange.usage, cost_usd=exchange.cost_usd or Decimal(0))

    def _land(self, answer: CachedAnswer | None) -> None:
        if self.landed or not self.key:
            return
        self.landed = True
        if answer is not None:
            local_cache().put(self.key, answer, self.ttl_s)
        if self.leads:
            flights.land(self.key, answer)
        if answer is not None or self.lock_token:
            run_in_background(redis_tier.store(self.key, answer, self.ttl_s, self.lock_token))


NO_CACHE = CacheLookup(landed=True)  # the policy has the cache off: nothing to look up or store


@traced("edge.cache.lookup")
async def look_up_cache(
    request: HttpRequest, route: ModelRoute, chat: ClientRequest, exchange: Exchange
) -> CacheLookup:
    directives = directives_for(request, route)
    if directives is None or exchange.key is None:
        exchange.cache_status = Status.BYPASS
        return NO_CACHE
    await generations_loaded()
    lookup = CacheLookup(
        key=cache_key(chat, route, exchange.key.tenant_id, generations), write=directives.write, ttl_s=directives.ttl_s
    )
    if not directives.read:
        exchange.cache_status = Status.BYPASS
        return lookup
    started = time.perf_counter()
    wait_s = flight.wait_limit_s(stream=chat.stream, deadline_s=route.policy.request_deadline_s)
    lookup.hit, exchange.cache_status = await _find(lookup, wait_s)
    observe.cache_looked_up(exchange.cache_status, time.perf_counter() - started, waited=lookup.waited)
    if lookup.waited:
        _count_wait(route, exchange, time.perf_counter() - started, answered=lookup.hit is not None)
    return lookup


def _count_wait(route: ModelRoute, exchange: Exchange, waited_s: float, *, answered: bool) -> None:
    """The wait was on another request's provider call: not the gateway's own time, but the request's
    (the attempt loop takes it off the deadline)."""
    exchange.flight_wait_ms = waited_s * 1000
    if not answered and route.policy.request_deadline_s - waited_s < MIN_ATTEMPT_S:
        raise deadline_exceeded(route)


async def _find(lookup: CacheLookup, wait_s: float) -> tuple[CachedAnswer | None, str]:
    key = lookup.key
    if (answer := local_cache().get(key)) is not None:
        return answer, Status.HIT_L1
    if (in_flight := flights.current(key)) is not None:
        lookup.waited = True
        answer = await flight.wait_for(in_flight, wait_s)
        return answer, Status.HIT_L1 if answer is not None else Status.MISS
    # Before any await: identical requests arriving from here on wait for this one.
    lookup.leads = lookup.write and flights.lead(key)
    if lookup.leads:
        _land_when_done(lookup)
    found = await redis_tier.fetch(key, lock=lookup.leads)
    answer, ttl_s, lookup.lock_token = found.answer, found.ttl_s, found.lock
    if answer is None and lookup.lock_token is None:  # another process is asking the provider
        lookup.waited = True
        answer, ttl_s, lookup.lock_token = await flight.follow_other_process(key, wait_s)
    if answer is None:
        return None, Status.MISS
    local_cache().put(key, answer, min(ttl_s, lookup.ttl_s))
    if lookup.leads:
        flights.land(key, answer)
        lookup.landed = True
    return answer, Status.HIT_L2


def _land_when_done(lookup: CacheLookup) -> None:
    # Whatever ends the request (an error, the client hanging up, a cancelled task, even during
    # the lookup itself) wakes the waiters; a request that stored its answer, or found one in
    # Redis, has landed already, and this does nothing.
    task = asyncio.current_task()
    if task is not None:
        task.add_done_callback(lambda _: lookup.abandon())


def answer_from_cache(exchange: Exchange, chat: ClientRequest, hit: CachedAnswer) -> HttpResponse:
    """A hit: the stored answer (replayed as a stream if one was asked for), at zero cost."""
    exchange.usage, exchange.cost_avoided_usd = hit.usage, hit.cost_usd
    if not chat.stream:
        exchange.finish(status="ok", http_status=200)
        return HttpResponse(hit.content, content_type="application/json")
    body = replay_stream(hit.content, include_usage=chat.include_usage)
    exchange.ttft_ms = exchange.elapsed_ms()
    exchange.finish(status="ok", http_status=200)
    response = HttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


async def stop_cache() -> None:
    """At shutdown, once background writes have had their moment: wake waiters, stop the subscriber."""
    flights.clear()
    await stop_listening()
