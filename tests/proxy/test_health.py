"""Health endpoints, as a load balancer and an operator read them."""

from __future__ import annotations

import httpx
import pytest

from tests.harness.served import Served

pytestmark = pytest.mark.usefixtures("live_db")


def test_it_reports_each_dependency_in_json(served: Served):
    response = httpx.get(f"{served.gateway.url}/health")

    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["providers"]["status"] == "ok"
    assert served.route.provider.name in body["checks"]["providers"]["configured"]
    assert body["checks"]["ledger"]["backlog"] >= 0


def test_it_is_ready_when_the_database_answers(gateway):
    response = httpx.get(f"{gateway.url}/health/ready")

    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_it_is_live_without_asking_anything_else(gateway):
    response = httpx.get(f"{gateway.url}/health/live")

    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"
