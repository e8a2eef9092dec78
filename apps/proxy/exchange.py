"""The per-request record that travels down the pipeline and ends as exactly one ledger row."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.http.response import HttpResponseBase
from django.utils import timezone

from apps.billing.admission import Ticket, settle_later
from apps.billing.keys import KeyInfo
from apps.billing.ledger import new_request_id, record_request
from apps.billing.pricing import cost_of
from apps.providers.contracts import NO_USAGE, Usage
from apps.providers.errors import OpenAIError
from apps.proxy.headers import set_header, stamp_quota
from apps.proxy.idempotency import Claim
from apps.proxy.usage_bounds import UsageBounds, believed_usage
from apps.routing.attempts import Attempt
from apps.routing.route_header import route_header


@dataclass(slots=True)
class Exchange:
    endpoint: str
    request_id: str = field(default_factory=new_request_id)
    received_at: datetime = field(default_factory=timezone.now)
    started: float = field(default_factory=time.perf_counter)
    key: KeyInfo | None = None
    model: str = ""
    stream: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    usage: Usage = NO_USAGE
    usage_note: str = ""  # why the usage billed is not the provider's (apps.proxy.usage_bounds)
    bounds: UsageBounds | None = None  # what usage is believable for this request, once it is known
    ttft_ms: int | None = None
    cost_usd: Decimal | None = None
    cache_status: str = ""  # hit-l1, hit-l2, miss or bypass (apps.proxy.cache); "" where nothing is cached
    cost_avoided_usd: Decimal = Decimal(0)  # on a cache hit: what the cached answer cost when it was made
    flight_wait_ms: float = 0.0  # time spent waiting for an identical request's provider call (cache)
    strategy: str = ""  # the routing strategy that ordered the attempts
    note: str = ""  # for the ledger row's note
    ticket: Ticket | None = None  # what admission took (apps.proxy.admission); settled by finish()
    idempotency: Claim | None = None  # the Idempotency-Key this request claimed (apps.proxy.replays)
    replayed: bool = False  # answered with an earlier request's stored response
    status: str = ""  # the ledger's status, once finished ("": the row is not written yet)
    refused_unless_cached: OpenAIError | None = None  # a budget's refusal, held while the cache is asked

    def elapsed_ms(self) -> int:
        return round((time.perf_counter() - self.started) * 1000)

    def overhead_ms(self) -> float:
        """Time spent in the gateway itself: everything but waiting on providers."""
        upstream_ms = sum(attempt.duration_ms for attempt in self.attempts) + self.flight_wait_ms
        return max(0.0, (time.perf_counter() - self.started) * 1000 - upstream_ms)

    def account(self, reported: Usage, estimate: Callable[[], Usage]) -> None:
        """The usage to bill: the provider's when believable, else the gateway's estimate (and why)."""
        self.usage, self.usage_note = believed_usage(reported, estimate, self.bounds, request_id=self.request_id)

    def finish(self, *, status: str, http_status: int, error_type: str = "") -> None:
        """Step 6, once per request, whatever ended it: price the usage, write the ledger row, and give
        back what admission took beyond what was used (requests that failed authentication have none)."""
        if self.status or self.key is None:
            return
        self.status = status
        target = self.attempts[-1].target if self.attempts else None  # none for a cache hit: nothing was spent
        self.cost_usd = cost_of(self.usage, target.prices_at(self.received_at)) if target else Decimal(0)
        record_request(
            request_id=self.request_id, key=self.key, endpoint=self.endpoint, model=self.model, stream=self.stream,
            received_at=self.received_at, status=status, http_status=http_status, error_type=error_type,
            latency_ms=self.elapsed_ms(), ttft_ms=self.ttft_ms, attempts=self.attempts, usage=self.usage,
            cost_usd=self.cost_usd, cache_status=self.cache_status, cost_avoided_usd=self.cost_avoided_usd,
            usage_note=self.usage_note, note=self.note,
        )
        if self.ticket is not None:  # after the row: what is spent is on disk before the budget frees it
            settle_later(self.ticket, tokens=self.usage.total_tokens if target else 0, cost_usd=self.cost_usd)

    def stamp(self, response: HttpResponseBase) -> HttpResponseBase:
        """The x-request-id and x-edge-* headers every API response carries (a replay keeps the first's)."""
        if self.replayed:
            return response
        response["x-request-id"] = self.request_id
        if self.attempts:
            set_header(response, "x-edge-provider", self.attempts[-1].target.upstream.provider_name)
        if self.cost_usd is not None:
            response["x-edge-cost-usd"] = f"{self.cost_usd:f}"
        response["x-edge-overhead-ms"] = f"{self.overhead_ms():.2f}"
        if self.cache_status:
            response["x-edge-cache"] = self.cache_status
        if self.strategy:
            set_header(response, "x-edge-route", route_header(self.strategy, self.attempts))
        stamp_quota(response, self.ticket)
        return response
