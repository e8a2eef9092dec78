"""Health endpoints, as a load balancer, an operator and anyone else read them."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import unique
from tests.harness.gateway import HEALTH_TOKEN, GatewayProcess
from tests.harness.served import Served

pytestmark = pytest.mark.usefixtures("live_db")


def session_cookie(*, is_staff: bool) -> dict[str, str]:
    """The admin session cookie of a freshly logged-in user (sessions live in the database the gateway reads)."""
    user = get_user_model().objects.create_user(unique("user"), password="x", is_staff=is_staff)
    browser = Client()
    browser.force_login(user)
    return {name: morsel.value for name, morsel in browser.cookies.items()}


def test_it_tells_anyone_the_overall_status_and_nothing_else(served: Served):
    response = httpx.get(f"{served.gateway.url}/health")

    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert served.route.provider.name not in response.text
    assert response.headers["cache-control"] == "no-store"


def test_it_shows_each_dependency_to_the_operator_token(served: Served):
    response = httpx.get(f"{served.gateway.url}/health", headers={"Authorization": f"Bearer {HEALTH_TOKEN}"})

    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["providers"]["status"] == "ok"
    assert served.route.provider.name in body["checks"]["providers"]["configured"]
    assert body["checks"]["ledger"]["backlog"] >= 0


@pytest.mark.parametrize("authorization", [f"Bearer {HEALTH_TOKEN}x", f"Bearer {HEALTH_TOKEN[:-1]}",
                                           "Bearer", HEALTH_TOKEN, f"Basic {HEALTH_TOKEN}"])
def test_a_wrong_token_sees_only_the_status(gateway: GatewayProcess, authorization: str):
    response = httpx.get(f"{gateway.url}/health", headers={"Authorization": authorization})

    assert response.json() == {"status": "ok"}


def test_it_shows_each_dependency_to_a_logged_in_staff_user(served: Served):
    response = httpx.get(f"{served.gateway.url}/health", cookies=session_cookie(is_staff=True))

    assert served.route.provider.name in response.json()["checks"]["providers"]["configured"]


def test_a_logged_in_user_who_is_not_staff_sees_only_the_status(gateway: GatewayProcess):
    response = httpx.get(f"{gateway.url}/health", cookies=session_cookie(is_staff=False))

    assert response.json() == {"status": "ok"}


def test_a_forged_session_cookie_sees_only_the_status(gateway: GatewayProcess):
    response = httpx.get(f"{gateway.url}/health", cookies={"sessionid": "not-a-session-anyone-was-given"})

    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/health/ready", "/health/live"])
def test_ready_and_live_answer_the_bare_status_even_to_an_operator(gateway: GatewayProcess, path: str):
    for headers in ({}, {"Authorization": f"Bearer {HEALTH_TOKEN}"}):
        response = httpx.get(f"{gateway.url}{path}", headers=headers)

        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert response.headers["cache-control"] == "no-store"
