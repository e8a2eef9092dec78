"""Each strategy's choice over a few hundred requests through a live gateway matches its definition;
model names match by pattern."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.factories import make_key, make_tenant, unique
from tests.routing.conftest import Pool, statuses

pytestmark = pytest.mark.usefixtures("live_db")


def test_failover_sends_everything_to_the_first_priority(pool_with: Callable[..., Pool]):
    pool = pool_with(size=3, strategy="failover")

    assert statuses(pool.send(100)) == {200: 100}

    assert pool.served_by() == [100, 0, 0]


def test_round_robin_spreads_requests_evenly(pool_with: Callable[..., Pool]):
    pool = pool_with(size=3, strategy="round_robin")

    pool.send(300, concurrency=4)

    assert pool.served_by() == [100, 100, 100]


def test_weighted_spreads_requests_in_proportion_to_weight(pool_with: Callable[..., Pool]):
    pool = pool_with(size=2, strategy="weighted", weights=[3, 1])

    pool.send(400, concurrency=8)

    heavy, light = pool.served_by()
    assert heavy + light == 400
    assert 0.68 <= heavy / 400 <= 0.82  # 0.75 expected; ±3.5 standard deviations


def test_least_latency_prefers_the_faster_deployment_but_keeps_exploring(pool_with: Callable[..., Pool]):
    pool = pool_with(size=2, strategy="least_latency")
    pool.fail(0, latency_ms=40)

    pool.send(300, concurrency=4)

    slow, fast = pool.served_by()
    assert fast >= 0.85 * 300
    assert slow >= 3  # measured once at the start, then picked by the 5% exploration


def test_cost_picks_the_cheapest_deployment_for_the_request(pool_with: Callable[..., Pool]):
    # Cheaper input but dearer output: which is cheaper depends on the request's shape.
    pool = pool_with(size=2, strategy="cost", prices=[("1.00", "1.00"), ("0.10", "20.00")])

    pool.send(20, body=pool.body("hi", max_tokens=1000))  # output dominates: the first
    long_prompt = pool.body("word " * 4000, max_tokens=1)  # input dominates: the second
    pool.send(20, body=long_prompt)

    assert pool.served_by() == [20, 20]


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/embeddings", {"input": "hello there friend"}),  # no output tokens at all
    ("/v1/completions", {"prompt": "word " * 100, "max_tokens": 1}),
    ("/v1/messages", {"messages": [{"role": "user", "content": "word " * 100}], "max_tokens": 1}),
])
def test_cost_orders_embeddings_completions_and_messages_by_their_own_shape(
    path: str, body: dict[str, object], pool_with: Callable[..., Pool]
):
    # Dear input and cheap output first: chosen only if the request were assumed to generate 256 tokens.
    pool = pool_with(size=2, strategy="cost", prices=[("5.00", "0.10"), ("0.10", "5.00")])

    response = httpx.post(f"{pool.gateway.url}{path}", json={"model": pool.name, **body},
                          headers={"Authorization": f"Bearer {pool.raw_key}"}, timeout=30)

    assert response.status_code == 200, response.text
    assert pool.served_by() == [0, 1]


def test_hybrid_weighs_cost_latency_and_reliability(pool_with: Callable[..., Pool]):
    # Same price; the first is slow: latency decides. With cost weight alone, priority breaks the tie.
    pool = pool_with(size=2, strategy="hybrid", prices=[("0.15", "0.60"), ("0.15", "0.60")])
    pool.fail(0, latency_ms=200)  # far slower than the fast one can look on a loaded machine

    pool.send(100, concurrency=4)

    slow, fast = pool.served_by()
    assert slow <= 4 and fast >= 96  # only the first wave of four, before any latency was measured


def test_hybrid_prefers_the_cheaper_deployment_when_cost_weighs_most(pool_with: Callable[..., Pool]):
    pool = pool_with(size=2, strategy="hybrid", prices=[("5.00", "15.00"), ("0.15", "0.60")],
                     hybrid_cost_weight=0.8, hybrid_latency_weight=0.1, hybrid_reliability_weight=0.1)
    pool.fail(1, latency_ms=5)  # a little slower, much cheaper

    pool.send(100, concurrency=4)

    dear, cheap = pool.served_by()
    assert cheap >= 98 and dear <= 2


def test_a_pattern_model_serves_any_matching_name_with_the_clients_model_upstream(pool_with: Callable[..., Pool]):
    prefix = unique("claude")
    pool = pool_with(size=1, name=f"{prefix}-*", upstream_models=["*"])
    exact = pool_with(size=1, name=f"{prefix}-exact")
    asked = f"{prefix}-3-haiku"

    response = pool.post(pool.body() | {"model": asked})
    exact_response = exact.post(exact.body())

    assert response.status_code == 200, response.text
    assert pool.fake.stats()["by_model"].get(asked) == 1  # the client's name went upstream
    assert exact_response.status_code == 200 and exact.served_by() == [1]  # an exact name wins
    listed = httpx.get(f"{pool.gateway.url}/v1/models", headers={"Authorization": f"Bearer {pool.raw_key}"}).json()
    names = {item["id"] for item in listed["data"]}
    assert f"{prefix}-exact" in names and f"{prefix}-*" not in names


def test_a_key_allowed_a_pattern_may_use_every_name_the_pattern_serves(pool_with: Callable[..., Pool]):
    prefix = unique("claude")
    pool = pool_with(size=1, name=f"{prefix}-*", upstream_models=["*"])
    pool_with(size=1, name=f"{prefix}-exact")  # once it is served, so is the pattern (one table)
    _, raw_key = make_key(make_tenant(), allowed_models=[f"{prefix}-*"])

    def ask(model: str) -> int:
        return httpx.post(f"{pool.gateway.url}/v1/chat/completions", json=pool.body() | {"model": model},
                          headers={"Authorization": f"Bearer {raw_key}"}, timeout=30).status_code

    assert ask(f"{prefix}-3-haiku") == 200
    assert ask(unique("gpt")) == 404


def test_a_pattern_does_not_serve_names_it_does_not_match(pool_with: Callable[..., Pool]):
    prefix = unique("claude")
    pool = pool_with(size=1, name=f"{prefix}-*", upstream_models=["*"])

    response = pool.post(pool.body() | {"model": unique("gpt")})

    assert response.status_code == 404
