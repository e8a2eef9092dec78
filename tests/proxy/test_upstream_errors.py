"""What the client sees when the provider misbehaves: the status OpenAI would use, OpenAI's error body,
none of the provider's internals, answers bounded by the provider timeout, and a ledger row saying error."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from apps.providers.tokens import count_tokens
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row, serve
from tests.proxy.conftest import SMALL_UPSTREAM_BODY_BYTES

pytestmark = pytest.mark.usefixtures("live_db")

TIMEOUT_S = 0.5  # the provider timeout of these tests' routes
UPSTREAM_500_MESSAGE = "The server had an error while processing your request"  # the fake's, as OpenAI words it


@pytest.fixture
def impatient(serve_with: Callable[..., Served]) -> Served:
    # One route per test: each failure counts towards the deployment's circuit breaker.
    return serve_with(timeout_s=TIMEOUT_S)


def timed_post(served: Served, body: dict[str, Any]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = served.post(body, timeout_s=30)
    return response, time.monotonic() - started


# Faults that strike before the provider has answered with a status: the same for streams.
BEFORE_ANSWERING = [
    ({"fail_status": 500}, 502, "upstream_error"),
    ({"fail_status": 503}, 502, "upstream_error"),
    ({"fail_status": 401}, 502, "upstream_auth_failed"),
    ({"require_key": "sk-a-key-the-gateway-does-not-have"}, 502, "upstream_auth_failed"),
    ({"fail_status": 403}, 502, "upstream_auth_failed"),
    ({"reset": True}, 502, "upstream_unreachable"),
    ({"hang": True}, 504, "upstream_timeout"),
    ({"latency_ms": 5000}, 504, "upstream_timeout"),
]
# Faults in a 200's body: a whole answer is refused; so is a stream whose first event is broken,
# because a stream counts as begun only once its first events have arrived (and could fail over).
IN_THE_BODY = [
    ({"malformed": True}, 502, "upstream_malformed_response"),
    ({"missing_fields": True}, 502, "upstream_malformed_response"),
    ({"dribble_ms": 20}, 504, "upstream_timeout"),
]


@pytest.mark.parametrize(
    ("knobs", "status", "code", "stream"),
    [(*case, stream) for case in BEFORE_ANSWERING + IN_THE_BODY for stream in (False, True)],
)
def test_it_answers_a_failing_provider_in_openais_shape_within_the_timeout(
    impatient: Served, fake, knobs: dict[str, Any], status: int, code: str, stream: bool
):
    fake.set_rule(impatient.upstream_model, **knobs)

    response, elapsed = timed_post(impatient, impatient.chat_body(stream=stream))

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert UPSTREAM_500_MESSAGE not in response.text and "Incorrect API key" not in response.text
    assert elapsed < TIMEOUT_S + 1.0
    row = ledger_row(response.headers["x-request-id"])
    assert (row.status, row.http_status, row.error_type, row.stream) == ("error", status, code, stream)
    assert row.provider == impatient.route.provider.name


def test_it_passes_on_a_providers_400_with_its_message_and_param(served: Served):
    # The gateway checks what it relies on (n, max_tokens…); a parameter only the provider knows is its to judge.
    with pytest.raises(openai.BadRequestError) as raised:
        served.client().embeddings.create(model=served.model, input="hi", dimensions=100_000)

    assert raised.value.status_code == 400
    assert raised.value.param == "dimensions" and "'dimensions' must be" in raised.value.message
    assert raised.value.type == "invalid_request_error"


def test_it_passes_on_a_providers_429_with_retry_after(served: Served, fake):
    fake.set_rule(served.upstream_model, fail_status=429, retry_after=7)

    with pytest.raises(openai.RateLimitError) as raised:
        served.client().chat.completions.create(model=served.model, messages=[{"role": "user", "content": "hi"}])

    assert raised.value.status_code == 429
    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.type == "rate_limit_error"


@pytest.fixture
def limited(limited_gateway: GatewayProcess, fake_v1: str) -> Served:
    return serve(limited_gateway, fake_v1)


def test_it_refuses_a_provider_answer_over_the_upstream_body_limit(limited: Served, fake):
    fake.set_rule(limited.upstream_model, huge_body_mb=4 * SMALL_UPSTREAM_BODY_BYTES / 1e6)

    response = limited.post(limited.chat_body())

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_response_too_large"
    assert len(response.content) < 1000


# --- Failures after a stream has begun: the status is sent, so the client gets an error event ----


def stream_until_error(served: Served) -> tuple[str, openai.APIError, str]:
    """Stream a chat; return the text relayed before the SDK raised, the error, and the request id."""
    raw = served.client().chat.completions.with_raw_response.create(
        model=served.model, messages=[{"role": "user", "content": "one two three four five six"}], stream=True
    )
    relayed = []
    with pytest.raises(openai.APIError) as raised:  # the error arrives while iterating
        for chunk in raw.parse():
            relayed.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    return "".join(relayed), raised.value, raw.headers["x-request-id"]


@pytest.mark.parametrize(
    ("knobs", "code"),
    [
        # The fake drops the connection mid-body: to httpx a broken transfer, to the client the same error event.
        ({"cut_stream_after": 3}, "upstream_unreachable"),
    ],
)
def test_it_ends_a_broken_stream_with_an_error_event_and_records_the_error(
    impatient: Served, fake, knobs: dict[str, Any], code: str
):
    fake.set_rule(impatient.upstream_model, **knobs)

    started = time.monotonic()
    relayed, error, request_id = stream_until_error(impatient)

    assert error.code == code and error.message
    assert time.monotonic() - started < TIMEOUT_S + 1.0
    row = ledger_row(request_id)
    assert (row.status, row.http_status, row.error_type) == ("error", 200, code)
    assert row.usage_source == "estimated" and row.prompt_tokens > 0 and row.completion_tokens == count_tokens(relayed)


def test_it_refuses_a_stream_event_over_the_upstream_body_limit(limited: Served, fake):
    fake.set_rule(limited.upstream_model, huge_body_mb=4 * SMALL_UPSTREAM_BODY_BYTES / 1e6, stream_chunks=1)

    response = limited.post(limited.chat_body(stream=True))

    # The oversized event is the stream's first content: refused before the stream begins.
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_response_too_large"
    assert len(response.content) < 1000
