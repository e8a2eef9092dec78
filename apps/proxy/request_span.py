"""The gateway's span of one request: ``{operation} {model}`` with the GenAI conventions' attributes.

It is opened when the view starts (``request_span``) and ended by ``Exchange.finish``, whatever ended the
request: for a stream that is after its last event, so the span covers the whole answer. The gateway's
own steps (route, admission, cache lookup, each provider attempt, the ledger record) are its children.
Attributes carry names, counts and outcomes only: never a prompt, an answer or a credential.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from apps.providers.semconv import provider_name
from edge_project.tracing import NOTHING, current, fail, operation_name, start_span, tracing_on

if TYPE_CHECKING:
    from apps.proxy.exchange import Exchange

OPERATIONS = {  # our endpoint → the GenAI operation name
    "chat.completions": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}


def request_span(exchange: Exchange) -> contextlib.AbstractContextManager[None]:
    """Open the request's span and make it the parent of what runs inside the block (it is not ended here)."""
    return _opened(exchange) if tracing_on() else NOTHING


@contextlib.contextmanager
def _opened(exchange: Exchange) -> Iterator[None]:
    attributes = {"edge.endpoint": exchange.endpoint, "edge.request_id": exchange.request_id}
    operation = OPERATIONS.get(exchange.endpoint)
    if operation is not None:
        operation_name.set(operation)
        attributes["gen_ai.operation.name"] = operation
    exchange.span = start_span(operation or f"edge {exchange.endpoint}", attributes)  # e.g. "edge models"
    with current(exchange.span):
        yield


def end_request_span(exchange: Exchange, *, status: str, http_status: int, error_type: str) -> None:
    span, exchange.span = exchange.span, None
    if span is None:
        return
    operation = OPERATIONS.get(exchange.endpoint)
    if operation is not None and exchange.model:
        span.update_name(f"{operation} {exchange.model}")
        span.set_attribute("gen_ai.request.model", exchange.model)
    target = exchange.attempts[-1].target if exchange.attempts else None
    if target is not None:
        # What the gateway knows of the answering model: the deployment it called (read from no body).
        span.set_attribute("gen_ai.response.model", target.upstream_model)
        span.set_attribute("gen_ai.provider.name", provider_name(target.upstream))
        span.set_attribute("edge.provider", target.upstream.provider_name)
    if exchange.usage.source != "none":
        span.set_attribute("gen_ai.usage.input_tokens", exchange.usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", exchange.usage.completion_tokens)
    if exchange.key is not None:
        span.set_attribute("edge.tenant", exchange.key.tenant_slug)
    for name, value in (("edge.cache", exchange.cache_status), ("edge.route", exchange.strategy)):
        if value:
            span.set_attribute(name, value)
    span.set_attribute("edge.status", status)
    span.set_attribute("edge.attempts", len(exchange.attempts))
    span.set_attribute("http.response.status_code", http_status)
    if status != "ok":
        fail(span, error_type or status)
    span.end()
