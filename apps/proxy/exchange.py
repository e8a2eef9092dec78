"""The per-request record that travels down the pipeline and ends as exactly one ledger row."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.http.response import HttpResponseBase
from django.utils import timezone

from apps.billing.keys import KeyInfo
from apps.billing.ledger import LedgerRecord, new_request_id, record_request
from apps.billing.pricing import cost_of
from apps.providers.contracts import NO_USAGE, Usage
from apps.routing.attempts import Attempt
from apps.routing.route_header import attempts_record, route_header


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
    ttft_ms: int | None = None
    cost_usd: Decimal | None = None
    recorded: bool = False
    cache_status: str = ""  # hit-l1, hit-l2, miss or bypass (apps.proxy.cache); "" where nothing is cached
    cost_avoided_usd: Decimal = Decimal(0)  # on a cache hit: what the cached answer cost when it was made
    flight_wait_ms: float = 0.0  # time spent waiting for an identical request's provider call (cache)
    strategy: str = ""  # the routing strategy that ordered the attempts

    def elapsed_ms(self) -> int:
        return round((time.perf_counter() - self.started) * 1000)

    def overhead_ms(self) -> float:
        """Time spent in the gateway itself: everything but waiting on providers."""
        upstream_ms = sum(attempt.duration_ms for attempt in self.attempts) + self.flight_wait_ms
        return max(0.0, (time.perf_counter() - self.started) * 1000 - upstream_ms)

    def finish(self, *, status: str, http_status: int, error_type: str = "") -> None:
        """Write this request's ledger row (once; requests that failed authentication have none)."""
        if self.recorded or self.key is None:
            return
        self.recorded = True
        target = self.attempts[-1].target if self.attempts else None
        self.cost_usd = cost_of(self.usage, target.prices) if target else Decimal(0)
        prices = target.prices if target else None
        record_request(
            LedgerRecord(
                request_id=self.request_id,
                tenant_id=self.key.tenant_id,
                api_key_id=self.key.key_id,
                endpoint=self.endpoint,
                public_model=self.model,
                stream=self.stream,
                status=status,
                http_status=http_status,
                error_type=error_type,
                created_at=self.received_at.isoformat(),
                latency_ms=self.elapsed_ms(),
                ttft_ms=self.ttft_ms,
                provider=target.upstream.provider_name if target else "",
                deployment_id=target.deployment_id if target else None,
                upstream_model=target.upstream_model if target else "",
                prompt_tokens=self.usage.prompt_tokens,
                completion_tokens=self.usage.completion_tokens,
                cached_tokens=self.usage.cached_tokens,
                usage_source=self.usage.source,
                input_usd_per_mtok=str(prices.input_usd_per_mtok) if prices else None,
                output_usd_per_mtok=str(prices.output_usd_per_mtok) if prices else None,
                cached_input_usd_per_mtok=str(prices.cached_input_usd_per_mtok) if prices else None,
                cost_usd=f"{self.cost_usd:f}",
                cache_status=self.cache_status,
                cost_avoided_usd=f"{self.cost_avoided_usd:f}",
                attempts=attempts_record(self.attempts),
                cache_write_tokens=self.usage.cache_creation_tokens,
                cache_write_usd_per_mtok=str(prices.cache_write_usd_per_mtok) if prices else None,
            )
        )

    def stamp(self, response: HttpResponseBase) -> HttpResponseBase:
        """The x-request-id and x-edge-* headers every API response carries."""
        response["x-request-id"] = self.request_id
        if self.attempts:
            response["x-edge-provider"] = self.attempts[-1].target.upstream.provider_name
        if self.cost_usd is not None:
            response["x-edge-cost-usd"] = f"{self.cost_usd:f}"
        response["x-edge-overhead-ms"] = f"{self.overhead_ms():.2f}"
        if self.cache_status:
            response["x-edge-cache"] = self.cache_status
        if self.strategy:
            response["x-edge-route"] = route_header(self.strategy, self.attempts)
        return response
