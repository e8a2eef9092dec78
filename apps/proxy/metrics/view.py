"""``GET /metrics``: for Prometheus, not for API keys.

Readable with the ``EDGE_METRICS_TOKEN`` bearer from anywhere, or without any credential from
``EDGE_METRICS_ALLOWED_NETWORKS`` (loopback by default, so `make run` is readable locally). A request
that brings another credential (an API key, say) is refused even from an allowed network: a key is
never a way in, and a wrong token is a mistake worth a 401 rather than silence.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from typing import Any

import orjson
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from apps.providers.errors import OpenAIError
from apps.proxy.client_address import Network, parse_address
from apps.proxy.client_address import client_address as address_of
from apps.proxy.metrics.scrape import exposition

logger = logging.getLogger(__name__)


async def metrics(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _refused(OpenAIError(f"Method {request.method} is not allowed here.", status=405,
                                    type="invalid_request_error", code="method_not_allowed"))
    if not may_read_metrics(request):
        error = OpenAIError("Reading /metrics needs the metrics token (Authorization: Bearer <EDGE_METRICS_TOKEN>) "
                            "or an address in EDGE_METRICS_ALLOWED_NETWORKS; API keys cannot read it.",
                            status=401, type="invalid_request_error", code="metrics_access_denied")
        return _refused(error, {"WWW-Authenticate": 'Bearer realm="metrics"'})
    # The classic text format (0.0.4), which every Prometheus reads; every name here is a classic one.
    response = HttpResponse(await exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response


def may_read_metrics(request: HttpRequest) -> bool:
    authorization = request.headers.get("Authorization", "")
    if authorization or "x-api-key" in request.headers:
        scheme, _, given = authorization.partition(" ")
        token: str = settings.EDGE_METRICS_TOKEN
        return bool(token) and scheme.lower() == "bearer" and constant_time_compare(given.strip(), token)
    address = parse_address(address_of(request))
    return address is not None and any(address in network for network in allowed_networks())


@functools.cache  # parsed once: a Django setting and a network parse per scrape would be wasted
def allowed_networks() -> tuple[Network, ...]:
    networks = []
    for entry in settings.EDGE_METRICS_ALLOWED_NETWORKS:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            logger.error("EDGE_METRICS_ALLOWED_NETWORKS: %r is not an IP address or network; ignored", entry)
    return tuple(networks)


@receiver(setting_changed)
def _reread_networks(*, setting: str, **kwargs: Any) -> None:
    if setting == "EDGE_METRICS_ALLOWED_NETWORKS":  # tests (override_settings) change it
        allowed_networks.cache_clear()


def _refused(error: OpenAIError, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(orjson.dumps(error.body()), status=error.status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response
