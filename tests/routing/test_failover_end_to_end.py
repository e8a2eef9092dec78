"""Retries and failover through a live gateway, against each of the fake upstream's faults: what the
client sees, how many upstream calls it took, and how the route is explained in ``x-edge-route`` and
the ledger."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import openai
import pytest

from apps.providers.tokens import count_tokens
from tests.harness.served import ledger_row
from tests.routing.conftest import Pool, statuses

pytestmark = pytest.mark.usefixtures("live_db")

ROUTE_STEP = re.compile(r"(?:(?P<model>[^:,;]+):)?(?P<label>[^=,; ]+)=(?P<outcome>[a-z_]+) (?P<ms>\d+)ms")


def route_steps(header: str) -> tuple[str, list[tuple[str, str]]]:
    strategy, _, steps = header.partition("; ")
    return strategy, [(m["label"], m["outcome"]) for m in ROUTE_STEP.finditer(steps)]


def label(pool: Pool, index: int) -> str:
    deployment = pool.deployments[index]
    return f"{deployment.provider.name}/{deployment.upstream_model}"


@pytest.mark.slow
def test_it_keeps_client_errors_under_one_percent_when_one_of_two_deployments_fails_30_percent(
    pool_with: Callable[..., Pool],
):
    pool = pool_with(strategy="round_robin")
    pool.fail(0, fail_status=503, fail_rate=0.3)

    answers = pool.send(500, concurrency=8)

    errors = sum(answer.status != 200 for answer in answers)
    assert errors / len(answers) < 0.01, statuses(answers)


def test_it_fails_over_on_a_500_and_explains_the_route(pool_with: Callable[..., Pool]):
    pool = pool_with(strategy="failover")
    pool.fail(0, fail_status=500)

    response = pool.post()

    assert response.status_code == 200
    assert response.headers["x-edge-provider"] == pool.deployments[1].provider.name
    strategy, steps = route_steps(response.headers["x-edge-route"])
    assert strategy == "failover"
    assert steps == [(label(pool, 0), "upstream_error"), (label(pool, 1), "ok")]
    row = ledger_row(response.headers["x-request-id"])
    assert [(a["deployment_id"], a["outcome"]) for a in row.attempts] == [
        (pool.deployments[0].pk, "upstream_error"), (pool.deployments[1].pk, "ok")]
    assert row.deployment_id == pool.deployments[1].pk and row.status == "ok"


def test_it_never_retries_or_fails_over_on_the_clients_own_400(pool_with: Callable[..., Pool]):
    pool = pool_with(strategy="failover")
    pool.fail(0, fail_status=400)  # the provider judges the request malformed: the client's fault, wherever it goes

    response = pool.post()

    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert pool.served_by() == [1, 0]


def test_it_retries_a_reset_on_the_same_deployment_then_fails_over(pool_with: Callable[..., Pool]):
    pool = pool_with(strategy="failover")
    pool.fail(0, reset=True)

    response = pool.post()

    assert response.status_code == 200
    assert route_steps(response.headers["x-edge-route"])[1] == [
        (label(pool, 0), "upstream_unreachable"), (label(pool, 0), "upstream_unreachable"), (label(pool, 1), "ok")]


def test_it_retries_a_429_after_a_short_retry_after_on_the_same_deployment(pool_with: Callable[..., Pool]):
    pool = pool_with(size=1, max_retries=1)
    pool.fail(0, fail_status=429, retry_after=1)

    started = time.monotonic()
    response = pool.post()

    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert time.monotonic() - started >= 1.0
    assert pool.served_by() == [2]


def test_it_fails_over_at_once_on_a_429_with_a_long_retry_after(pool_with: Callable[..., Pool]):
    pool = pool_with(strategy="failover")
    pool.fail(0, fail_status=429, retry_after=30)

    started = time.monotonic()
    response = pool.post()

    assert response.status_code == 200 and time.monotonic() - started < 1.0
    assert pool.served_by() == [1, 1]


@pytest.mark.parametrize(
    ("knobs", "outcome"),
    [
        ({"hang": True}, "upstream_timeout"),
        ({"malformed": True}, "upstream_malformed_response"),
        ({"missing_fields": True}, "upstream_malformed_response"),
        ({"dribble_ms": 20}, "upstream_timeout"),
        # A 50 MB stream event grows slower than the 0.5 s attempt timeout: either way it fails over.
        ({"huge_body_mb": 50}, "upstream_response_too_large|upstream_timeout"),
        ({"fail_status": 401}, "upstream_auth_failed"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_it_fails_over_from_a_misbehaving_deployment_before_the_client_sees_a_byte(
    pool_with: Callable[..., Pool], knobs: dict[str, object], outcome: str, stream: bool
):
    pool = pool_with(strategy="failover", timeout_s=0.5)
    pool.fail(0, **knobs)

    started = time.monotonic()
    response = pool.post(pool.body(stream=stream))

    assert response.status_code == 200
    assert b'"error"' not in response.content
    assert time.monotonic() - started < 0.5 + 1.5
    (first, first_outcome), second = route_steps(response.headers["x-edge-route"])[1]
    assert first == label(pool, 0) and first_outcome in outcome.split("|")
    assert second == (label(pool, 1), "ok")


@pytest.mark.parametrize("knobs", [{"cut_stream_after": 0}, {"chunk_delay_ms": 1000}])
def test_it_fails_over_from_a_stream_that_never_begins(pool_with: Callable[..., Pool], knobs: dict[str, object]):
    pool = pool_with(strategy="failover", stream_idle_timeout_s=0.3)
    pool.fail(0, **knobs)

    response = pool.post(pool.body(stream=True))

    assert response.status_code == 200 and response.text.rstrip().endswith("data: [DONE]")
    assert route_steps(response.headers["x-edge-route"])[1][-1] == (label(pool, 1), "ok")


def test_it_ends_a_stream_past_its_deadline_with_an_error_event_and_estimated_usage(pool_with: Callable[..., Pool]):
    pool = pool_with(size=1, stream_deadline_s=0.6)
    pool.fail(0, chunk_delay_ms=100)  # 12 words: ~1.3 s in all
    client = openai.OpenAI(base_url=f"{pool.gateway.url}/v1", api_key=pool.raw_key, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(
        model=pool.name, messages=[{"role": "user", "content": "tell me"}], stream=True)
    relayed = []
    started = time.monotonic()
    with pytest.raises(openai.APIError) as raised:
        for chunk in raw.parse():
            relayed.append(chunk.choices[0].delta.content or "" if chunk.choices else "")

    assert raised.value.code == "stream_deadline_exceeded"
    assert time.monotonic() - started < 1.0
    row = ledger_row(raw.headers["x-request-id"])
    assert (row.status, row.error_type, row.usage_source) == ("error", "stream_deadline_exceeded", "estimated")
    assert 0 < row.completion_tokens == count_tokens("".join(relayed))


def test_it_bounds_a_whole_request_by_the_policys_deadline(pool_with: Callable[..., Pool]):
    pool = pool_with(strategy="failover", request_deadline_s=0.5, timeout_s=10)
    pool.fail(0, hang=True)
    pool.fail(1, hang=True)

    started = time.monotonic()
    response = pool.post()

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "request_deadline_exceeded"
    assert time.monotonic() - started < 1.0


def test_it_prefers_another_provider_when_failing_over(pool_with: Callable[..., Pool]):
    from apps.routing.models import Deployment

    pool = pool_with(size=3, strategy="failover", same_deployment_retries=0)
    # The second deployment is on the first one's provider: failing over should skip to the third.
    Deployment.objects.filter(pk=pool.deployments[1].pk).update(provider=pool.deployments[0].provider)
    time.sleep(0.2)
    pool.post()  # served from the old table; starts the reload
    time.sleep(0.2)
    pool.fake.reset()
    pool.fail(0, fail_status=500)

    response = pool.post()

    assert response.status_code == 200
    assert pool.served_by() == [1, 0, 1]


def test_it_tries_the_policys_fallback_model_after_the_models_own_deployments(pool_with: Callable[..., Pool]):
    bigger = pool_with(size=1)
    pool = pool_with(size=1, max_retries=2, fallbacks={"default": [bigger.name]})
    pool.fail(0, fail_status=500)

    response = pool.post()

    assert response.status_code == 200
    header = response.headers["x-edge-route"]
    assert header.endswith(f"{bigger.name}:{label(bigger, 0)}=ok {header.rsplit(' ', 1)[1]}")
    row = ledger_row(response.headers["x-request-id"])
    assert row.public_model == pool.name and row.deployment_id == bigger.deployments[0].pk


@pytest.mark.parametrize("stream", [False, True])
def test_it_records_a_client_that_leaves_before_the_answer_begins(pool_with: Callable[..., Pool], stream: bool):
    import httpx

    from apps.billing.models import LedgerEntry

    pool = pool_with(size=1)
    pool.fail(0, latency_ms=1500)

    with pytest.raises(httpx.ReadTimeout):
        pool.post(pool.body(stream=stream), timeout_s=0.3)

    chats = LedgerEntry.objects.filter(api_key=pool.key, endpoint="chat.completions")
    deadline = time.monotonic() + 5
    while not (rows := list(chats.all())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(row.status, row.http_status, row.stream) for row in rows] == [("cancelled", 499, stream)]
