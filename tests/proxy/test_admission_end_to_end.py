"""Limits and budgets, end to end: two gateway processes on one Redis and one Postgres enforce them as one.

Each test issues its own key with its own limits (a fresh key: no process has it cached), against
its own model on the fake upstream.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from openai.types.chat import ChatCompletionMessageParam

from apps.billing.admission import budget_status
from apps.billing.keys import hash_key as key_hash
from apps.billing.keys import load_key_info
from apps.billing.limits_text import usd_text
from apps.billing.models import ApiKey, LedgerEntry
from apps.billing.pricing import worst_case_cost
from apps.billing.services import create_api_key, record_adjustment
from apps.providers.tokens import bound_prompt_tokens, count_prompt_tokens
from apps.routing.prices import Prices
from tests.conftest import wait_until_served
from tests.factories import unique
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row, wait_for_rows
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.slow


def issue(served: Served, **limits: Any) -> str:
    """A new key of the served tenant with these limits (rpm=…, budget_usd=…)."""
    _, raw = create_api_key(tenant=served.tenant, name="limited", **limits)
    return raw


def post(gateway: GatewayProcess, raw_key: str, body: dict[str, Any], path: str = "/v1/chat/completions",
         **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}{path}", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {raw_key}", **headers})


def both_at_once(gateways: list[GatewayProcess], count: int, send: Callable[[GatewayProcess], httpx.Response]
                 ) -> list[httpx.Response]:
    """``count`` requests at once, alternating between the gateways."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda index: send(gateways[index % len(gateways)]), range(count)))


def worst_case(served: Served, body: dict[str, Any], output_tokens: int, *, counted: bool = True) -> Decimal:
    """What the gateway reserves for ``body``: its prompt counted exactly, or (``counted=False``) bounded
    by its length, as admission first asks (apps.proxy.admission.Sizer)."""
    deployment = served.route.deployment
    price = deployment.input_usd_per_mtok
    prices = Prices(price, deployment.output_usd_per_mtok, deployment.cached_input_usd_per_mtok or price,
                    deployment.cache_write_usd_per_mtok or price)
    prompt = count_prompt_tokens(body) if counted else bound_prompt_tokens(body)
    return worst_case_cost(prompt, output_tokens, [prices])


@pytest.fixture
def gateways(served: Served, gateway: GatewayProcess, second_gateway: GatewayProcess) -> list[GatewayProcess]:
    """Both gateways, once each serves the test's model (config reaches each within EDGE_CONFIG_TTL_S)."""
    wait_until_served(second_gateway.url, served.raw_key, served.model)
    return [gateway, second_gateway]


def test_an_rpm_limit_holds_exactly_across_two_processes_and_says_when_to_retry(served: Served, gateways):
    raw = issue(served, rpm=10)

    responses = both_at_once(gateways, 40, lambda gateway: post(gateway, raw, served.chat_body()))

    assert sorted(response.status_code for response in responses) == [200] * 10 + [429] * 30
    refused = [response for response in responses if response.status_code == 429]
    for response in refused:
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
        # GCRA at 10/min: one request every 6 s once the burst is spent.
        assert 0 < int(response.headers["retry-after-ms"]) <= 6000
        assert int(response.headers["Retry-After"]) == math.ceil(int(response.headers["retry-after-ms"]) / 1000)
        assert response.headers["x-ratelimit-limit-requests"] == "10"
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
    last = refused[-1]
    wait_ms = int(last.headers["retry-after-ms"])
    received = time.monotonic()
    time.sleep(max(0.0, wait_ms / 1000 - 0.5))  # the limiter's own clock is the condition: half a second early
    assert post(gateways[1], raw, served.chat_body()).status_code == 429
    time.sleep(max(0.0, received + wait_ms / 1000 + 0.1 - time.monotonic()))
    assert post(gateways[0], raw, served.chat_body()).status_code == 200


def test_max_parallel_never_lets_more_requests_reach_the_provider_at_once(served: Served, fake, gateways):
    raw = issue(served, max_parallel=3)
    fake.set_rule(served.upstream_model, latency_ms=400)

    responses = both_at_once(gateways, 12, lambda gateway: post(gateway, raw, served.chat_body()))

    assert fake.stats()["peak_in_flight"][served.upstream_model] == 3
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) >= 3 and set(statuses) <= {200, 429}
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "rate_limit_exceeded"
    # Every slot was given back: three more go through at once.
    assert [post(gateways[0], raw, served.chat_body()).status_code for _ in range(3)] == [200] * 3


def test_a_budget_admits_only_the_requests_whose_worst_case_it_covers(served: Served, fake, gateways):
    body = served.chat_body(max_tokens=40)
    budget = 5 * worst_case(served, body, 40, counted=False)
    raw = issue(served, budget_usd=budget, budget_period="day")
    # Each answer spends exactly what admission reserved for it, so a request that settles early frees
    # nothing: the outcome cannot depend on how the 40 requests interleave (under load, the last ones
    # can arrive after the first have settled; a smaller spend would then make room for a sixth).
    fake.set_rule(served.upstream_model, latency_ms=200,
                  reported_usage={"prompt_tokens": bound_prompt_tokens(body), "completion_tokens": 40})

    responses = both_at_once(gateways, 40, lambda gateway: post(gateway, raw, body))

    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 5 and statuses.count(429) == 35
    assert fake.stats()["by_model"][served.upstream_model] == 5
    refusal = next(response for response in responses if response.status_code == 429)
    assert refusal.json()["error"]["code"] == "insufficient_quota"
    assert refusal.headers["x-should-retry"] == "false"
    rows = wait_for_rows(response.headers["x-request-id"] for response in responses)
    spent = sum((row.cost_usd for row in rows.values()), Decimal(0))
    assert spent == budget
    # What was reserved and not spent is back: the remaining budget is the budget less what the ledger says.
    subject = load_key_info(key_hash(raw)).subjects[0]  # type: ignore[union-attr]
    wait_until(lambda: budget_status(subject).reserved_usd == 0, what="reservations settled")
    assert budget_status(subject).remaining_usd == budget - spent


def key_budget_settles(served: Served, raw: str, budget: Decimal) -> None:
    """Once every request of the key has settled, remaining = budget − ledger spend, to the cent and finer."""
    subject = load_key_info(key_hash(raw)).subjects[0]  # type: ignore[union-attr]
    wait_until(lambda: budget_status(subject).reserved_usd == 0, what="the reservation released")

    def spend() -> Decimal:
        rows = LedgerEntry.objects.filter(api_key__key_hash=key_hash(raw))
        return sum((row.cost_usd for row in rows), Decimal(0))

    wait_until(lambda: budget_status(subject).remaining_usd == budget - spend(), what="spend settled as ledgered")


BUDGET = Decimal("1.00")


def test_a_stream_the_client_drops_gives_back_what_it_did_not_spend(served: Served, fake, gateway):
    raw = issue(served, budget_usd=BUDGET)
    fake.set_rule(served.upstream_model, chunk_delay_ms=100, reply_words=40)
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=served.chat_body(stream=True),
                      headers={"Authorization": f"Bearer {raw}"}, timeout=30) as response:
        chunks = response.iter_bytes()
        next(chunks), next(chunks)
        request_id = response.headers["x-request-id"]
    row = ledger_row(request_id)
    assert row.status == "cancelled"
    key_budget_settles(served, raw, BUDGET)


def test_a_provider_failure_after_failover_gives_the_reservation_back(served: Served, fake, gateway):
    raw = issue(served, budget_usd=BUDGET)
    fake.set_rule(served.upstream_model, fail_status=500)

    response = post(gateway, raw, served.chat_body())

    assert response.status_code == 502
    assert ledger_row(response.headers["x-request-id"]).cost_usd == 0
    key_budget_settles(served, raw, BUDGET)


def test_a_request_past_its_deadline_gives_the_reservation_back(serve_with, fake, gateway):
    served = serve_with(request_deadline_s=0.3)
    raw = issue(served, budget_usd=BUDGET)
    fake.set_rule(served.upstream_model, latency_ms=2000)

    response = post(gateway, raw, served.chat_body())

    assert response.status_code == 504
    key_budget_settles(served, raw, BUDGET)


LEASE_S = 2.0


def test_a_killed_gateways_slot_and_reservation_expire_within_the_lease(served: Served, fake, gateway, tmp_path):
    raw = issue(served, budget_usd=BUDGET, max_parallel=1)
    fake.set_rule(served.upstream_model, latency_ms=30_000)
    doomed = GatewayProcess(spool_dir=tmp_path / "spool", log_path=tmp_path / "gateway.log",
                            env={"EDGE_LEASE_S": str(LEASE_S)}).start()
    subject = load_key_info(key_hash(raw)).subjects[0]  # type: ignore[union-attr]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(post, doomed, raw, served.chat_body())
        wait_until(lambda: budget_status(subject).reserved_usd > 0, what="the reservation taken")
        doomed.kill()
    killed = time.monotonic()
    fake.set_rule(served.upstream_model, latency_ms=0)
    while (answer := post(gateway, raw, served.chat_body())).status_code == 429:  # the dead request's slot
        assert time.monotonic() - killed < 2 * LEASE_S, "the dead process's slot outlived its lease"
        time.sleep(0.1)
    assert answer.status_code == 200
    key_budget_settles(served, raw, BUDGET)  # its reservation is gone too; the killed request's row awaits adoption


def test_a_flushed_redis_rebuilds_spend_from_the_ledger(served: Served, gateway):
    raw = issue(served, budget_usd=BUDGET, budget_period="month")
    first = post(gateway, raw, served.chat_body())
    assert first.status_code == 200
    # The ledger says the budget is spent: written straight to the table, as another process or a
    # correction might have, so only a rebuild from the ledger can know it.
    record_adjustment(entry=ledger_row(first.headers["x-request-id"]), cost_delta_usd=BUDGET, note="test")
    forget_this_installations_redis_state()

    refused = post(gateway, raw, served.chat_body())

    assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"


def forget_this_installations_redis_state() -> None:
    """What a FLUSHALL does to the gateway under test, without touching anyone else's keys."""
    client = redis.Redis.from_url(str(settings.REDIS_URL))
    try:
        keys = list(client.scan_iter(match=f"{settings.EDGE_REDIS_PREFIX}*", count=1000))
        assert keys, "the gateway keeps its budgets in Redis"
        client.delete(*keys)
    finally:
        client.close()


def test_the_openai_sdk_reads_the_headers_waits_out_a_rate_limit_and_gives_up_on_a_spent_budget(
    served: Served, gateway
):
    raw = issue(served, rpm=20)  # once spent, one request per 3 s: longer than the SDK's own backoff of two retries
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=raw, max_retries=2)
    both_at_once([gateway], 20, lambda gateway: post(gateway, raw, served.chat_body()))
    refused = client.chat.completions.with_raw_response.create(model=served.model, messages=HI)
    assert refused.headers["x-ratelimit-limit-requests"] == "20"

    completion = client.chat.completions.create(model=served.model, messages=HI)

    # It got a 429 and waited its retry-after-ms: without waiting that long its two retries would have failed too.
    assert completion.choices[0].message.content
    marker = post(gateway, raw, served.chat_body())
    rows = LedgerEntry.objects.filter(api_key__key_hash=key_hash(raw)).order_by("created_at")
    wait_until(lambda: rows.filter(request_id=marker.headers["x-request-id"]).exists(), what="the rows in")
    statuses = [row.http_status for row in rows]
    assert statuses[:20] == [200] * 20 and 429 in statuses[20:22] and statuses[-2] == 200

    broke = issue(served, budget_usd=Decimal("0.0000000001"))
    sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=broke, max_retries=2)
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(model=served.model, messages=HI)
    assert raised.value.code == "insufficient_quota"
    marker = post(gateway, broke, served.chat_body())  # one process, one spool: rows land in order
    ledger_row(marker.headers["x-request-id"])
    assert LedgerEntry.objects.filter(api_key__key_hash=key_hash(broke)).count() == 2  # the SDK did not retry


HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10, "stream": True}),
    ("/v1/completions", {"prompt": "hi", "max_tokens": 10}),
    ("/v1/completions", {"prompt": "hi", "max_tokens": 10, "stream": True}),
    ("/v1/embeddings", {"input": "hi"}),
    ("/v1/messages", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}),
    ("/v1/messages", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10, "stream": True}),
], ids=["chat", "chat-stream", "completions", "completions-stream", "embeddings", "messages", "messages-stream"])
def test_every_endpoint_is_admitted_limited_and_settled_the_same_way(
    served: Served, gateway, path: str, body: dict[str, Any]
):
    raw = issue(served, rpm=2, budget_usd=BUDGET)
    full = {"model": served.model, **body}

    first, second, third = (post(gateway, raw, full, path) for _ in range(3))

    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert Decimal(first.headers["x-edge-budget-remaining-usd"]) < BUDGET
    if path == "/v1/messages":
        assert third.json()["error"]["type"] == "rate_limit_error"  # Anthropic's shape on Anthropic's endpoint
    else:
        assert third.json()["error"]["code"] == "rate_limit_exceeded"
    key_budget_settles(served, raw, BUDGET)


def test_a_request_may_cap_its_own_cost(served: Served, gateway):
    body = served.chat_body(max_tokens=100)
    worst = worst_case(served, body, 100)

    refused = post(gateway, served.raw_key, body, **{"x-edge-max-cost-usd": f"{worst / 2:f}"})
    allowed = post(gateway, served.raw_key, body, **{"x-edge-max-cost-usd": f"{worst:f}"})

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "max_cost_exceeded" and f"{worst:f}" in refused.json()["error"]["message"]
    assert allowed.status_code == 200


def test_the_key_page_shows_what_the_ledger_says_was_spent(served: Served, gateway):
    raw = issue(served, budget_usd=BUDGET)
    responses = [post(gateway, raw, served.chat_body()) for _ in range(3)]
    key_budget_settles(served, raw, BUDGET)
    spent = sum((row.cost_usd for row in wait_for_rows(r.headers["x-request-id"] for r in responses).values()),
                Decimal(0))
    staff = Client()
    staff.force_login(User.objects.create_superuser(unique("admin"), password="x"))

    key_id = ApiKey.objects.get(key_hash=key_hash(raw)).pk
    page = staff.get(reverse("admin:billing_apikey_change", args=[key_id])).content

    assert f"spent {usd_text(spent)} · reserved $0 · remaining {usd_text(BUDGET - spent)}".encode() in page


@pytest.mark.parametrize("delta", [Decimal("0.25"), Decimal("-0.0000001")], ids=["charge", "refund"])
def test_an_adjustment_counts_against_the_budget_at_once(served: Served, gateway, delta: Decimal):
    raw = issue(served, budget_usd=BUDGET)
    answered = post(gateway, raw, served.chat_body())
    key_budget_settles(served, raw, BUDGET)

    record_adjustment(entry=ledger_row(answered.headers["x-request-id"]), cost_delta_usd=delta, note="correction")

    key_budget_settles(served, raw, BUDGET)  # remaining = budget − ledger spend, the adjustment included
    assert Decimal(post(gateway, raw, served.chat_body()).headers["x-edge-budget-remaining-usd"]) < BUDGET - delta


def test_a_spent_budget_still_gets_answers_from_the_cache_which_cost_nothing(serve_with, gateway):
    cached = serve_with(cache_ttl_s=60)
    body = cached.chat_body(max_tokens=40)
    raw = issue(cached, budget_usd=worst_case(cached, body, 40))  # one worst case: after one request, not two
    assert post(gateway, raw, body).status_code == 200
    key_budget_settles(cached, raw, worst_case(cached, body, 40))

    repeated = post(gateway, raw, body)
    other = post(gateway, raw, cached.chat_body("something else", max_tokens=40))

    assert (repeated.status_code, repeated.headers["x-edge-cache"]) == (200, "hit-l1")
    assert other.status_code == 429 and other.json()["error"]["code"] == "insufficient_quota"
    assert ledger_row(repeated.headers["x-request-id"]).cost_usd == 0


def test_a_prompt_its_length_makes_too_large_is_counted_and_admitted_when_it_fits(served: Served, gateway):
    body = served.chat_body("hello " * 200, max_tokens=10)  # 1,200 bytes, about 200 tokens
    counted = count_prompt_tokens(body) + 10
    assert bound_prompt_tokens(body) + 10 > 500 >= counted
    raw = issue(served, tpm=500)

    admitted = post(gateway, raw, body)

    assert admitted.status_code == 200
    assert int(admitted.headers["x-ratelimit-remaining-tokens"]) == 500 - counted
