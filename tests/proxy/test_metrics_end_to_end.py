"""/metrics on a live gateway: each counter moves as a request's fate says, and money and tokens agree
with the ledger. Each test has its own model and providers, so its series are its own."""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from apps.billing.services import create_api_key
from apps.providers.fake_upstream import BackgroundFakeUpstream
from tests.harness.gateway import GatewayProcess
from tests.harness.scraping import Scrape, scrape
from tests.harness.served import Served, wait_for_rows
from tests.harness.waiting import wait_until
from tests.routing.conftest import Pool, make_pool

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture
def pool_with(gateway: GatewayProcess, fake: BackgroundFakeUpstream, live_db: None) -> Callable[..., Pool]:
    return functools.partial(make_pool, gateway, fake)


def metrics_of(served: Served) -> Scrape:
    return scrape(served.gateway.url)


def request_labels(served: Served) -> dict[str, str]:
    return {"provider": served.route.provider.name, "model": served.model}


def test_it_counts_successes_with_the_tokens_and_cost_the_ledger_bills(served: Served):
    client = served.client()
    request_ids = []
    for text in ("one", "two words", "three words here"):
        response = client.chat.completions.with_raw_response.create(
            model=served.model, messages=[{"role": "user", "content": text}])
        request_ids.append(response.headers["x-request-id"])

    rows = wait_for_rows(request_ids).values()
    metrics = metrics_of(served)
    labels = request_labels(served)
    assert metrics.value("llm_requests_total", **labels) == 3
    assert metrics.value("llm_requests_success_total", **labels) == 3
    assert metrics.value("llm_requests_error_total", **labels) == 0
    assert metrics.value("llm_request_duration_seconds_count", **labels) == 3
    assert metrics.value("llm_tokens_prompt_total", **labels) == sum(row.prompt_tokens for row in rows)
    assert metrics.value("llm_tokens_completion_total", **labels) == sum(row.completion_tokens for row in rows)
    assert metrics.value("llm_tokens_total", **labels) == sum(row.prompt_tokens + row.completion_tokens
                                                             for row in rows)
    ledger_cents = sum((row.cost_usd for row in rows), Decimal(0)) * 100
    assert ledger_cents > 0
    assert metrics.value("llm_cost_total_cents", **labels) == pytest.approx(float(ledger_cents), rel=1e-9)
    assert metrics.value("llm_tenant_cost_cents_total", tenant=served.tenant.slug) == pytest.approx(
        float(ledger_cents), rel=1e-9)
    assert metrics.value("llm_provider_requests_total", provider=served.route.provider.name) == 3
    assert metrics.value("llm_attempts_total", provider=served.route.provider.name, kind="first", outcome="ok") == 3


def test_it_counts_a_failover_as_the_first_providers_error_and_the_seconds_success(
    pool_with: Callable[..., Pool],
):
    pool = pool_with(strategy="failover")
    pool.fail(0, fail_status=500)

    assert pool.post().status_code == 200

    metrics = scrape(pool.gateway.url)
    first, second = (deployment.provider.name for deployment in pool.deployments)
    assert metrics.value("llm_requests_total", provider=second, model=pool.name) == 1
    assert metrics.value("llm_requests_success_total", provider=second, model=pool.name) == 1
    assert metrics.value("llm_provider_errors_total", provider=first, error_type="provider") == 1
    assert metrics.value("llm_provider_errors_total", provider=second) == 0
    assert metrics.value("llm_attempts_total", provider=first, kind="first", outcome="provider") == 1
    assert metrics.value("llm_attempts_total", provider=second, kind="failover", outcome="ok") == 1
    assert metrics.value("llm_provider_request_duration_seconds_count", provider=first) == 1


def test_it_blames_the_client_for_its_own_400_and_the_provider_for_a_500_it_could_not_escape(
    pool_with: Callable[..., Pool],
):
    rejected = pool_with(strategy="failover", size=1, max_retries=0)
    rejected.fail(0, fail_status=400)
    failing = pool_with(strategy="failover", size=1, max_retries=0)
    failing.fail(0, fail_status=500)

    assert rejected.post().status_code == 400
    assert failing.post().status_code == 502

    metrics = scrape(rejected.gateway.url)
    assert metrics.value("llm_requests_error_total", model=rejected.name, error_type="client") == 1
    assert metrics.value("llm_requests_error_total", model=failing.name, error_type="provider") == 1
    assert metrics.value("llm_requests_error_total", model=failing.name, error_type="client") == 0


def test_it_counts_a_cache_hit_by_tier_at_no_provider_and_no_cost(serve_with: Callable[..., Served]):
    cached = serve_with(cache_ttl_s=300)
    before = metrics_of(cached)
    body = cached.chat_body("the same question twice")

    assert cached.post(body).headers["x-edge-cache"] == "miss"
    assert cached.post(body).headers["x-edge-cache"] == "hit-l1"

    after = metrics_of(cached)
    assert after.value("llm_cache_hits_total", tier="l1") - before.value("llm_cache_hits_total", tier="l1") == 1
    assert after.value("llm_cache_misses_total", tier="l1") - before.value("llm_cache_misses_total", tier="l1") == 1
    assert after.value("llm_cache_misses_total", tier="l2") - before.value("llm_cache_misses_total", tier="l2") == 1
    assert after.value("llm_cache_hits_total", tier="l2") == before.value("llm_cache_hits_total", tier="l2")
    assert after.value("llm_requests_success_total", provider="none", model=cached.model) == 1
    assert after.value("llm_requests_success_total", **request_labels(cached)) == 1
    assert after.value("llm_cost_total_cents", provider="none", model=cached.model) == 0
    assert after.value("llm_cache_size_bytes", tier="l1") > 0


def test_it_counts_rate_limit_and_budget_refusals_as_the_policys(served: Served):
    _, one_a_minute = create_api_key(tenant=served.tenant, name="rpm", rpm=1)
    _, no_money = create_api_key(tenant=served.tenant, name="budget", budget_usd=Decimal("0.0000000001"))
    before = metrics_of(served)

    assert served.post(served.chat_body(), headers=bearer(one_a_minute)).status_code == 200
    assert served.post(served.chat_body(), headers=bearer(one_a_minute)).status_code == 429
    refused = served.post(served.chat_body(), headers=bearer(no_money))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"

    after = metrics_of(served)
    none = {"provider": "none", "model": served.model}
    assert after.value("llm_requests_error_total", **none, error_type="policy") == 2
    for limit in ("rate_limit", "budget"):
        assert after.value("llm_admission_refusals_total", limit=limit) - before.value(
            "llm_admission_refusals_total", limit=limit) == 1


def test_it_counts_a_stream_with_its_time_to_first_token(served: Served):
    chunks = list(served.client().chat.completions.create(
        model=served.model, messages=[{"role": "user", "content": "stream this"}], stream=True))
    assert chunks

    metrics = metrics_of(served)
    labels = request_labels(served)
    assert metrics.value("llm_requests_success_total", **labels) == 1
    assert metrics.value("llm_time_to_first_token_seconds_count", **labels) == 1
    assert metrics.value("llm_tokens_total", **labels) > 0
    assert metrics.value("llm_gateway_overhead_seconds_count") > 0


def test_it_labels_a_model_no_route_serves_as_unknown_and_never_by_the_clients_name(served: Served):
    invented = "invented-model-name-0123"
    unknown = {"provider": "none", "model": "unknown", "error_type": "client"}
    before = metrics_of(served).value("llm_requests_error_total", **unknown)

    response = served.post({"model": invented, "messages": [{"role": "user", "content": "hi"}]})

    assert response.status_code == 404
    text = httpx.get(f"{served.gateway.url}/metrics", timeout=10).text
    assert invented not in text
    assert metrics_of(served).value("llm_requests_error_total", **unknown) == before + 1


def bearer(raw_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw_key}"}


def test_it_counts_a_request_with_a_wrong_key_as_the_clients_error(served: Served):
    unknown = {"provider": "none", "model": "unknown", "error_type": "client"}
    before = metrics_of(served).value("llm_requests_error_total", **unknown)

    assert served.post(served.chat_body(), headers=bearer("sk-edge-not-a-key")).status_code == 401

    assert metrics_of(served).value("llm_requests_error_total", **unknown) == before + 1


def test_it_shows_a_request_in_progress_as_an_active_connection_until_it_ends(served: Served,
                                                                            fake: BackgroundFakeUpstream):
    fake.set_rule(served.upstream_model, latency_ms=1500)
    before = metrics_of(served).value("llm_active_connections")

    with ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(served.post, served.chat_body())
        wait_until(lambda: metrics_of(served).value("llm_active_connections") == before + 1,
                   what="the request counted as in progress")
        assert answer.result().status_code == 200

    wait_until(lambda: metrics_of(served).value("llm_active_connections") == before, what="the request counted out")
