"""Strategies in-process: each ordering matches its definition, and the retry budget and health
counters behave as their contracts say."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import pytest

from apps.providers.contracts import Upstream
from apps.routing import retry_budget as budget_module
from apps.routing.health import Counters, HealthBook, merge
from apps.routing.prices import Prices
from apps.routing.retry_budget import RetryBudget
from apps.routing.strategies import RequestShape, order_targets
from apps.routing.table import ModelRoute, RoutePolicy, Target


def target(deployment_id: int, *, provider: str = "p", input_price: str = "1", output_price: str = "1",
           priority: int = 1, weight: int = 1) -> Target:
    upstream = Upstream(provider_id=deployment_id, provider_name=provider, kind="openai",
                        base_url="http://x/v1", api_key="", headers={}, timeout_s=1)
    prices = Prices(input_usd_per_mtok=Decimal(input_price), output_usd_per_mtok=Decimal(output_price),
                    cached_input_usd_per_mtok=Decimal(input_price), cache_write_usd_per_mtok=Decimal(input_price))
    return Target(deployment_id=deployment_id, upstream=upstream, upstream_model=f"m{deployment_id}",
                  prices=prices, priority=priority, weight=weight)


def route(strategy: str, *targets: Target, policy: RoutePolicy | None = None) -> ModelRoute:
    return ModelRoute(name=f"route-{strategy}-{id(targets)}", strategy=strategy, max_retries=2, targets=targets,
                      created=0, policy=policy or RoutePolicy())


def firsts(model_route: ModelRoute, health: HealthBook, count: int) -> Counter[int]:
    return Counter(order_targets(model_route, RequestShape(), health)[0].deployment_id for _ in range(count))


def test_least_latency_puts_the_fastest_first_and_explores_about_five_percent():
    health = HealthBook()
    for _ in range(5):
        health.record(1, ok=True, latency_ms=80)
        health.record(2, ok=True, latency_ms=10)

    picks = firsts(route("least_latency", target(1), target(2)), health, 2000)

    assert 0.02 <= picks[1] / 2000 <= 0.08


def test_least_latency_tries_an_unmeasured_deployment_first():
    health = HealthBook()
    health.record(1, ok=True, latency_ms=10)

    assert firsts(route("least_latency", target(1), target(2)), health, 200)[2] >= 180


def test_cost_orders_by_the_estimated_price_of_this_request():
    cheap_input = target(1, input_price="0.1", output_price="10")
    cheap_output = target(2, input_price="5", output_price="1")
    model_route = route("cost", cheap_input, cheap_output)

    long_prompt = order_targets(model_route, RequestShape(prompt_tokens=10_000, output_tokens=10), HealthBook())
    long_answer = order_targets(model_route, RequestShape(prompt_tokens=10, output_tokens=10_000), HealthBook())

    assert [t.deployment_id for t in long_prompt] == [1, 2] and [t.deployment_id for t in long_answer] == [2, 1]


def test_request_shape_estimates_prompt_tokens_from_bytes_and_output_from_max_tokens():
    shape = RequestShape.of({"max_tokens": 50}, 4000)

    assert (shape.prompt_tokens, shape.output_tokens) == (1000, 50)
    assert RequestShape.of({"max_tokens": True}, 0).output_tokens == 256


def test_hybrid_weighs_normalised_cost_latency_and_reliability():
    health = HealthBook()
    for _ in range(10):
        health.record(1, ok=True, latency_ms=100)  # dear, slow, reliable
        health.record(2, ok=True, latency_ms=10)  # cheap, fast…
    for _ in range(10):
        health.record(2, ok=False)  # …but failing half its calls
    dear, cheap = target(1, input_price="10", output_price="10"), target(2, input_price="1", output_price="1")

    default = order_targets(route("hybrid", dear, cheap), RequestShape(100, 100), health)
    reliability_policy = RoutePolicy(hybrid_weights=(0.1, 0.1, 0.8))
    reliability_first = order_targets(route("hybrid", dear, cheap, policy=reliability_policy),
                                      RequestShape(100, 100), health)

    assert [t.deployment_id for t in default] == [2, 1]  # 0.4·0 + 0.4·0 + 0.2·1 < 0.4·1 + 0.4·1
    assert [t.deployment_id for t in reliability_first] == [1, 2]


def test_weighted_never_picks_a_zero_weight_deployment():
    picks = firsts(route("weighted", target(1, weight=0), target(2, weight=1)), HealthBook(), 200)

    assert picks == {2: 200}


def test_health_merges_processes_weighted_by_calls_and_decays_old_counts():
    now = time.time()
    busy = Counters(successes=90, failures=10, latency_ms=20, at=now)
    quiet = Counters(successes=1, failures=9, latency_ms=200, at=now)
    old = Counters(successes=0, failures=1000, latency_ms=5000, at=now - 10 * 60)  # stale: ignored

    merged = merge([busy, quiet, old], now)

    assert merged.calls == pytest.approx(110)
    assert merged.success_rate == pytest.approx(91 / 110)
    assert merged.latency_ms == pytest.approx((20 * 100 + 200 * 10) / 110)
    assert Counters(successes=8, at=now - 60).decayed(now)[0] == pytest.approx(4)  # one half-life


def test_the_retry_budget_allows_a_fifth_on_top_of_first_attempts(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(budget_module, "MIN_RETRIES_PER_WINDOW", 0)
    budget = RetryBudget()
    for _ in range(100):
        budget.record_request("m")

    granted = sum(budget.try_spend("m", 0.2) for _ in range(100))

    assert granted == 20


def test_the_retry_budget_lets_a_quiet_gateway_retry():
    budget = RetryBudget()
    budget.record_request("m")

    assert sum(budget.try_spend("m", 0.2) for _ in range(50)) == budget_module.MIN_RETRIES_PER_WINDOW


def test_least_latency_ranks_streams_by_time_to_first_token_and_whole_answers_by_latency():
    health = HealthBook()
    health.record(1, ok=True, latency_ms=900, ttft_ms=10)  # a long answer that starts at once
    health.record(2, ok=True, latency_ms=100, ttft_ms=200)
    model = route("least_latency", target(1), target(2))

    streams = Counter(order_targets(model, RequestShape(stream=True), health)[0].deployment_id for _ in range(200))

    assert firsts(model, health, 200)[2] >= 180 and streams[1] >= 180
