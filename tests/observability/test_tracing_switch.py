"""Tracing is on only when the environment asks for OTLP export, and off it is absent: the application the
servers load is not wrapped, no instrumentation is imported, and no tracer provider is installed.

(redis-py imports OpenTelemetry's API and metrics SDK by itself whenever they are installed, for its own
opt-in metrics, which stay off: that is not tracing, and costs its commands nothing.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_project.tracing import tracing_requested

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("environ", "requested"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "false"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
])
def test_tracing_is_requested_by_an_otlp_endpoint_unless_the_sdk_is_disabled(environ: dict[str, str],
                                                                             requested: bool):
    assert tracing_requested(environ) is requested


def loaded_tracing(tmp_path: Path, **environ: str) -> list[str]:
    """In a fresh process that loaded the ASGI application: its type, the tracer provider's, and the
    tracing modules (instrumentations, the SDK's tracing, exporters) imported."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update({"DJANGO_SETTINGS_MODULE": "edge_project.settings.base", "EDGE_LEDGER_SPOOL_DIR": str(tmp_path),
                **environ})
    script = ("import sys, edge_project.asgi as asgi; "
              "print(type(asgi.application).__name__); "
              "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__name__); "
              "print(' '.join(sorted(name for name in sys.modules if name.startswith(("
              "'opentelemetry.instrumentation', 'opentelemetry.sdk.trace', 'opentelemetry.exporter')))))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    application, provider, modules = [*result.stdout.splitlines(), ""][:3]
    return [application, provider, *modules.split()]


def test_without_an_endpoint_nothing_of_tracing_is_loaded(tmp_path: Path):
    assert loaded_tracing(tmp_path) == ["EdgeApplication", "ProxyTracerProvider"]


def test_with_an_endpoint_the_application_is_wrapped_for_one_server_span_per_request(tmp_path: Path):
    application, provider, *modules = loaded_tracing(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")

    assert (application, provider) == ("OpenTelemetryMiddleware", "TracerProvider")
    assert "opentelemetry.instrumentation.httpx" in modules and "opentelemetry.instrumentation.django" in modules
