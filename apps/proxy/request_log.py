"""One log line per API request, written when it ends (``Exchange.finish``), from the exchange alone.

Logger ``edge.requests`` at INFO; ``EDGE_LOG_REQUESTS=false`` silences it. The formatter
(``apps.proxy.logging``) writes it as one JSON object (or ``key=value`` text) and redacts every value a
client or provider could have put a secret in (the model name, say). Prompts and answers are never
in it: nothing here reads a body.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.routing.route_header import route_header
from edge_project.tracing import ids_of

if TYPE_CHECKING:
    from apps.proxy.exchange import Exchange

logger = logging.getLogger("edge.requests")
FIELDS = (  # every line has each of these keys (null when it does not apply), in this order
    "request_id", "tenant", "key_prefix", "endpoint", "model", "stream", "provider", "upstream_model",
    "status", "http_status", "error_type", "latency_ms", "ttft_ms", "overhead_ms", "input_tokens",
    "output_tokens", "cached_tokens", "usage_source", "cost_usd", "cache", "route", "attempts",
)


def log_request(exchange: Exchange, *, status: str, http_status: int, error_type: str) -> None:
    if not settings.EDGE_LOG_REQUESTS or not logger.isEnabledFor(logging.INFO):
        return
    # The record is made here rather than by logger.info(): that would walk the stack for the caller's
    # file and line (meaningless here) and copy each field onto the record; together they were half the
    # line's cost. The formatter reads the fields from ``record.fields``.
    record = logging.LogRecord(logger.name, logging.INFO, __file__, 0, "request", None, None)
    record.fields = request_fields(exchange, status=status, http_status=http_status, error_type=error_type)
    logger.handle(record)


def request_fields(exchange: Exchange, *, status: str, http_status: int, error_type: str) -> dict[str, Any]:
    key, usage = exchange.key, exchange.usage
    target = exchange.attempts[-1].target if exchange.attempts else None
    fields: dict[str, Any] = {
        "request_id": exchange.request_id,
        "tenant": key.tenant_slug if key else None,
        "key_prefix": key.prefix if key else None,
        "endpoint": exchange.endpoint,
        "model": exchange.model or None,
        "stream": exchange.stream,
        "provider": target.upstream.provider_name if target else None,
        "upstream_model": target.upstream_model if target else None,
        "status": status,
        "http_status": http_status,
        "error_type": error_type or None,
        "latency_ms": exchange.elapsed_ms(),
        "ttft_ms": exchange.ttft_ms,
        "overhead_ms": round(exchange.overhead_ms(), 2),
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "usage_source": usage.source,
        "cost_usd": f"{exchange.cost_usd:f}" if exchange.cost_usd is not None else None,
        "cache": exchange.cache_status or None,
        "route": route_header(exchange.strategy, exchange.attempts) if exchange.strategy else None,
        "attempts": len(exchange.attempts),
    }
    if (ids := ids_of(exchange.span)) is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields
