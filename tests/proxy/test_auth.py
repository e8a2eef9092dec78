"""Authentication: every refusal is a 401 in OpenAI's shape, and a model a key may not use looks unknown."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import openai
import pytest
from django.utils import timezone

from apps.billing.models import Tenant
from apps.billing.services import revoke_api_key
from tests.factories import make_key, make_tenant
from tests.harness.served import Served

pytestmark = pytest.mark.usefixtures("live_db")

KEY_CACHE_TTL_S = 0.5  # EDGE_KEY_CACHE_TTL_S of the test gateway


@pytest.fixture(scope="module")
def served(module_serve_with: Callable[..., Served]) -> Served:
    return module_serve_with()


def chat_with(served: Served, headers: dict[str, str]) -> httpx.Response:
    return served.post(served.chat_body(), headers=headers)


def assert_refused_as_unauthenticated(response: httpx.Response, code: str = "invalid_api_key") -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error" and error["message"]


def test_it_refuses_a_request_without_a_key(served: Served):
    assert_refused_as_unauthenticated(chat_with(served, {}), code="missing_api_key")


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer: sk-edge-x", "sk-edge-no-scheme", "Token abc"]
)
def test_it_refuses_a_malformed_authorization_header(served: Served, header: str):
    assert_refused_as_unauthenticated(chat_with(served, {"Authorization": header}), code="missing_api_key")


def test_it_refuses_an_unknown_key_through_the_sdk(served: Served):
    client = served.client(api_key="sk-edge-not-a-key-we-issued")

    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(model=served.model, messages=[{"role": "user", "content": "hi"}])

    assert raised.value.status_code == 401 and raised.value.code == "invalid_api_key"


def test_it_stops_accepting_a_revoked_key_within_the_cache_ttl(served: Served):
    key, raw_key = served.another_key()
    client = served.client(api_key=raw_key)
    client.models.list()  # the key is now cached by the gateway

    revoke_api_key(key=key)
    revoked_at = time.monotonic()
    with pytest.raises(openai.AuthenticationError):
        while time.monotonic() - revoked_at < 5:
            client.models.list()
            time.sleep(0.05)

    assert time.monotonic() - revoked_at < KEY_CACHE_TTL_S + 0.5


def test_it_refuses_an_expired_key(served: Served):
    _, raw_key = make_key(served.tenant, expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(openai.AuthenticationError):
        served.client(api_key=raw_key).models.list()


def test_it_refuses_a_key_once_it_expires_even_while_cached(served: Served):
    expires_at = timezone.now() + timedelta(seconds=0.3)
    _, raw_key = make_key(served.tenant, expires_at=expires_at)
    client = served.client(api_key=raw_key)
    client.models.list()  # cached now, for longer than the key has left

    time.sleep((expires_at - timezone.now()).total_seconds() + 0.02)

    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_it_refuses_the_keys_of_an_inactive_tenant(served: Served):
    tenant = make_tenant()
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    _, raw_key = make_key(tenant)

    with pytest.raises(openai.AuthenticationError):
        served.client(api_key=raw_key).models.list()


def test_it_answers_a_model_outside_the_allowlist_exactly_as_an_unknown_model(serve_with: Callable[..., Served]):
    allowed, forbidden = serve_with(), serve_with()
    _, raw_key = allowed.another_key(allowed_models=[allowed.model])
    client = allowed.client(api_key=raw_key)

    errors = []
    for model in (forbidden.model, "model-that-does-not-exist"):
        with pytest.raises(openai.NotFoundError) as raised:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        errors.append(raised.value)

    assert [error.code for error in errors] == ["model_not_found", "model_not_found"]
    assert [error.param for error in errors] == ["model", "model"]
    forbidden_message, unknown_message = (error.message for error in errors)
    assert forbidden_message.replace(forbidden.model, "M") == unknown_message.replace("model-that-does-not-exist", "M")
