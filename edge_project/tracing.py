"""Traces: OpenTelemetry, installed only when the environment asks for OTLP export.

``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns tracing on, unless
``OTEL_SDK_DISABLED=true``; every other standard ``OTEL_*`` variable (headers, sampler, batch sizes, resource
attributes) is read by the SDK itself. ``OTEL_SERVICE_NAME`` defaults to ``llm-edge``.

On: the ASGI server span covers each request to its last byte (a stream's body included: the middleware is
told not to make spans of each ``send``), Django's instrumentation names browser pages' spans by route,
httpx's makes a client span per provider call and carries ``traceparent`` upstream, and the gateway's own
spans (``span()`` below) sit between them. Every span passes through ``RedactingExporter`` on its way out,
in the exporter's thread: no secret or personal data leaves in a name, attribute, event or status.

Off (the default): nothing from OpenTelemetry is imported, no instrumentation is installed, and ``span()``
returns one shared ``nullcontext``: a global read per step.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from edge_project.redaction import redact

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Span, Tracer

P = ParamSpec("P")
T = TypeVar("T")
DEFAULT_SERVICE_NAME = "llm-edge"
_tracer: Tracer | None = None
NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()  # reusable: what every helper returns when off
# The GenAI operation of the request being served (chat, embeddings, …), for the spans of lower layers
# (a provider attempt) that do not know which endpoint called them. Set only while tracing is on.
operation_name: ContextVar[str] = ContextVar("operation_name", default="chat")


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint is set and the SDK is not disabled."""
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return bool(endpoint) and environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def tracing_on() -> bool:
    return _tracer is not None


def start_tracing(exporter: SpanExporter | None = None) -> bool:
    """Install the SDK and the instrumentations if the environment asks for traces (or, in tests, send
    them to ``exporter`` instead of OTLP). Call before the ASGI handlers load their middleware: Django's
    instrumentation adds one. Idempotent; returns whether tracing is on."""
    global _tracer
    if _tracer is not None or (exporter is None and not tracing_requested()):
        return _tracer is not None
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(redacting(OTLPSpanExporter())))
    else:
        provider.add_span_processor(SimpleSpanProcessor(redacting(exporter)))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _tracer = provider.get_tracer("llm-edge")
    return True


def traced_application(app: Any) -> Any:
    """The ASGI application with its server span, if tracing is on; else ``app`` itself."""
    if _tracer is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    # Without exclude_spans, each chunk of a stream would be a span of its own.
    return OpenTelemetryMiddleware(app, exclude_spans=["receive", "send"])


def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "internal",
         parent: Span | None = None) -> contextlib.AbstractContextManager[Span | None]:
    """A child span of the current one (or of ``parent``) around a block; a shared no-op when tracing is off."""
    if _tracer is None:
        return NOTHING
    from opentelemetry.trace import SpanKind, set_span_in_context

    context = set_span_in_context(parent) if parent is not None else None
    return _tracer.start_as_current_span(name, context=context, kind=SpanKind[kind.upper()],
                                         attributes=dict(attributes or {}), record_exception=False)


def traced(name: str) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorate a pipeline step (an async function) to run inside a span of its own when tracing is on."""

    def decorate(step: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(step)
        async def traced_step(*args: P.args, **kwargs: P.kwargs) -> T:
            if _tracer is None:
                return await step(*args, **kwargs)
            with span(name):
                return await step(*args, **kwargs)

        return traced_step

    return decorate


def start_span(name: str, attributes: Mapping[str, Any] | None = None) -> Span | None:
    """A span that outlives the block that starts it (a request's, ended once its stream ends); None when off."""
    if _tracer is None:
        return None
    return _tracer.start_span(name, attributes=dict(attributes or {}))


@contextlib.contextmanager
def current(span: Span | None) -> Iterator[None]:
    """Make ``span`` the parent of the spans started inside the block (without ending it after)."""
    if span is None:
        yield
        return
    from opentelemetry.trace import use_span

    with use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
        yield


def ids_of(span: Span | None = None) -> tuple[str, str] | None:
    """(trace id, span id) in hex of ``span`` or of the current span, for log lines; None when off or none."""
    if _tracer is None:
        return None
    from opentelemetry.trace import get_current_span

    context = (span or get_current_span()).get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def fail(span: Span | None, error_type: str, description: str = "") -> None:
    """Mark ``span`` failed with a closed ``error.type`` (the description is redacted on export)."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, description or None))


def redacting(inner: SpanExporter) -> SpanExporter:
    # RedactingExporter is duck-typed so that this module imports nothing from the SDK while tracing is off.
    return cast("SpanExporter", RedactingExporter(inner))


class RedactingExporter:
    """Wraps an exporter: every span's name, attributes, events and status description are redacted first."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([redacted_span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Status

    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description))
    return ReadableSpan(
        name=redact(span.name), context=span.context, parent=span.parent, resource=span.resource,
        attributes=redacted_attributes(span.attributes), links=span.links, kind=span.kind, status=status,
        events=[Event(event.name, redacted_attributes(event.attributes), event.timestamp) for event in span.events],
        start_time=span.start_time, end_time=span.end_time, instrumentation_scope=span.instrumentation_scope,
    )


def redacted_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, tuple | list):
            return tuple(clean(item) for item in value)
        return value

    return {key: clean(value) for key, value in (attributes or {}).items()}
