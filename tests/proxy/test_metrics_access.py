"""Who may read /metrics: Prometheus (the metrics token, or an allowed network), never an API key."""

from __future__ import annotations

import httpx
import pytest
from django.test import Client, override_settings

from tests.harness.gateway import GatewayProcess
from tests.harness.scraping import parse
from tests.harness.served import Served

TOKEN = "metrics-token-0123456789abcdefghij"


def test_an_api_key_cannot_read_metrics_even_from_an_allowed_network(served: Served):
    response = httpx.get(f"{served.gateway.url}/metrics", headers=served.headers(), timeout=10)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "metrics_access_denied"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "llm_" not in response.text


def test_loopback_reads_metrics_without_a_token_by_default(gateway: GatewayProcess):
    response = httpx.get(f"{gateway.url}/metrics", timeout=10)

    assert response.status_code == 200
    families = parse(response.text).types
    assert families["llm_requests"] == "counter"
    assert families["llm_request_duration_seconds"] == "histogram"
    assert families["llm_active_connections"] == "gauge"
    assert "process_cpu_seconds" not in families  # off in multiprocess mode: it would be one worker's


@pytest.mark.django_db(transaction=True)
@override_settings(EDGE_METRICS_ALLOWED_NETWORKS=[], EDGE_METRICS_TOKEN=TOKEN)
def test_outside_the_allowed_networks_only_the_metrics_token_reads_metrics():
    client = Client()

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer sk-edge-not-the-token"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    answered = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answered.status_code == 200
    assert "llm_requests" in parse(answered.content.decode()).types


@pytest.mark.django_db(transaction=True)
@override_settings(EDGE_METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"], EDGE_METRICS_TOKEN="")
def test_an_allowed_network_reads_metrics_and_others_do_not():
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.0.2.7").get("/metrics").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_metrics_take_only_get():
    response = Client().post("/metrics")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
