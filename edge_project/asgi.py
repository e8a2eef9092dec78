"""The ASGI application uvicorn (production), daphne and `runserver` serve.

Two Django handlers share one URLconf: API paths (/v1/, /health) run through API_MIDDLEWARE, which
leaves out sessions, CSRF and messages (they cost most of a fast request and mean nothing to a
bearer-key client); admin and every other path get the full MIDDLEWARE. Building the application
starts the ledger spool; the lifespan protocol, where the server speaks it, stops it and closes the
pooled upstream connections. Metrics are counted in files per process (``edge_project.metrics_dir``).
With an OTLP endpoint in the environment, the whole is wrapped in OpenTelemetry's ASGI middleware: one
server span per request, a stream's body included (edge_project.tracing).
"""

from __future__ import annotations

import os

import django
from django.conf import settings

from edge_project.metrics_dir import prepare_metrics_dir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edge_project.settings.base")
# Before anything imports prometheus_client (django.setup() loads the apps): every server process counts
# in its instance's multiprocess directory, so /metrics is right under any number of workers.
prepare_metrics_dir(settings.EDGE_METRICS_DIR)
django.setup(set_prefix=False)

from edge_project.lifespan import EdgeApplication  # noqa: E402  (needs the apps loaded)
from edge_project.tracing import start_tracing, traced_application  # noqa: E402

start_tracing()  # before the handlers load their middleware (Django's instrumentation adds one); no-op if unset
application = traced_application(EdgeApplication())
