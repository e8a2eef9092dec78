"""A span per provider attempt (GenAI conventions: ``{operation} {model}``, kind CLIENT).

httpx's instrumentation makes the HTTP span beneath it, which carries ``traceparent`` to the provider.
Nothing here runs when tracing is off: ``attempt_span`` is then the shared no-op of ``edge_project.tracing``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from apps.providers.errors import ProviderError
from apps.providers.semconv import call_attributes
from apps.routing.table import Target
from edge_project.tracing import NOTHING, fail, operation_name, span, tracing_on

if TYPE_CHECKING:
    from opentelemetry.trace import Span


def attempt_span(target: Target, *, fallback: bool) -> contextlib.AbstractContextManager[Span | None]:
    if not tracing_on():
        return NOTHING
    operation = operation_name.get()
    attributes = call_attributes(target.upstream, operation, target.upstream_model)
    attributes.update({"edge.provider": target.upstream.provider_name, "edge.deployment_id": target.deployment_id,
                       "edge.fallback": fallback})
    return span(f"{operation} {target.upstream_model}", attributes, kind="client")


def attempt_ended(span: Span | None, error: ProviderError | None) -> None:
    if span is None:
        return
    if error is None:
        span.set_attribute("edge.outcome", "ok")
        return
    outcome = error.code or error.type
    span.set_attribute("edge.outcome", outcome)
    if error.upstream_status:
        span.set_attribute("http.response.status_code", error.upstream_status)
    fail(span, outcome, error.message)  # a provider's error body may echo anything: redacted on export
