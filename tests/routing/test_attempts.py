"""The attempt loop in-process, with a scripted upstream: which errors are retried where, fallback
models by error code, the retry budget, and open breakers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Iterator

import pytest

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import ChatStream, StreamEvent
from apps.providers.errors import ProviderError
from apps.proxy.exchange import Exchange
from apps.proxy.pipeline import stream_route
from apps.routing.attempts import Attempt, attempt_in_order
from apps.routing.route_header import route_header
from apps.routing.shared_state import shared_state
from apps.routing.table import ModelRoute, RoutePolicy, RoutingTable, Target
from tests.routing.test_strategies import route, target

FAST = RoutePolicy(backoff_start_s=0.001, breaker_failure_threshold=0)
_ids = iter(range(30_000_000, 40_000_000))


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    shared_state.reset()
    yield
    shared_state.reset()


def context_too_long() -> ProviderError:
    return ProviderError("This model's maximum context length is 8192 tokens.", status=400,
                         type="invalid_request_error", code="context_length_exceeded", retryable=False,
                         upstream_status=400)


def unavailable_503() -> ProviderError:
    return ProviderError("HTTP 503", code="upstream_error", upstream_status=503, retryable=True)


def run(model_route: ModelRoute, script: dict[int, list[ProviderError | None]]) -> tuple[object, list[Attempt]]:
    """Answers per deployment id, in order: an error to raise, or None to succeed."""
    attempts: list[Attempt] = []

    async def call(adapter: ProviderAdapter, target: Target) -> str:
        outcome = script[target.deployment_id].pop(0)
        if outcome is not None:
            raise outcome
        return f"answer from {target.deployment_id}"

    async def scenario() -> object:
        try:
            return (await attempt_in_order(model_route, call, attempts))[1]
        except ProviderError as exc:
            return exc

    return asyncio.run(scenario()), attempts


def policy_route(strategy: str, *targets: Target, **policy: object) -> ModelRoute:
    return route(strategy, *targets, policy=dataclasses.replace(FAST, **policy))  # type: ignore[arg-type]


def test_it_tries_the_fallback_named_for_the_error_code():
    small, large = target(next(_ids)), target(next(_ids))
    bigger = policy_route("failover", large)
    model = dataclasses.replace(policy_route("failover", small), name="small",
                                fallbacks=(("context_length_exceeded", (dataclasses.replace(bigger, name="big"),)),))

    answer, attempts = run(model, {small.deployment_id: [context_too_long()], large.deployment_id: [None]})

    assert answer == f"answer from {large.deployment_id}"
    assert [(a.model, a.outcome) for a in attempts] == [("small", "context_length_exceeded"), ("big", "ok")]


def test_it_passes_on_a_clients_400_when_no_fallback_is_named_for_it():
    small, large = target(next(_ids)), target(next(_ids))
    model = dataclasses.replace(policy_route("failover", small),
                                fallbacks=(("default", (policy_route("failover", large),)),))

    answer, attempts = run(model, {small.deployment_id: [context_too_long()], large.deployment_id: [None]})

    assert isinstance(answer, ProviderError) and answer.code == "context_length_exceeded"
    assert len(attempts) == 1


def test_it_retries_a_503_once_on_the_same_deployment_then_fails_over():
    first, second = target(next(_ids), provider="a"), target(next(_ids), provider="b")

    answer, attempts = run(policy_route("failover", first, second),
                           {first.deployment_id: [unavailable_503(), unavailable_503()], second.deployment_id: [None]})

    assert answer == f"answer from {second.deployment_id}"
    assert [a.target.deployment_id for a in attempts] == [first.deployment_id, first.deployment_id,
                                                          second.deployment_id]


def test_it_stops_retrying_the_same_deployment_when_the_budget_is_spent(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(shared_state.budget, "try_spend", lambda name, ratio: False)
    first, second = target(next(_ids), provider="a"), target(next(_ids), provider="b")

    _, attempts = run(policy_route("failover", first, second),
                      {first.deployment_id: [unavailable_503()], second.deployment_id: [None]})

    assert [a.target.deployment_id for a in attempts] == [first.deployment_id, second.deployment_id]


def test_it_makes_at_most_max_retries_plus_one_attempts():
    only = target(next(_ids))
    model = dataclasses.replace(policy_route("failover", only, same_deployment_retries=5), max_retries=2)

    answer, attempts = run(model, {only.deployment_id: [unavailable_503()] * 6})

    assert isinstance(answer, ProviderError) and len(attempts) == 3


def test_it_answers_503_when_every_breaker_is_open():
    only = dataclasses.replace(target(next(_ids)), breaker_override="open")

    answer, attempts = run(policy_route("failover", only), {only.deployment_id: [None]})

    assert isinstance(answer, ProviderError)
    assert (answer.status, answer.code) == (503, "deployments_unavailable") and attempts == []


def unsupported() -> ProviderError:
    return ProviderError("Provider a (anthropic) does not offer embeddings.", status=400,
                         type="invalid_request_error", code="unsupported_by_provider", retryable=True)


def test_it_fails_over_from_a_deployment_that_cannot_serve_the_request_without_opening_its_breaker():
    anthropic, openai = target(next(_ids), provider="a"), target(next(_ids), provider="b")
    model = policy_route("failover", anthropic, openai, breaker_failure_threshold=5)

    answers = [run(model, {anthropic.deployment_id: [unsupported()], openai.deployment_id: [None]})[0]
               for _ in range(6)]

    assert answers == [f"answer from {openai.deployment_id}"] * 6
    assert shared_state.breakers.state_of(anthropic) == "closed"
    assert shared_state.health.view(anthropic.deployment_id).success_rate is None  # no sample either way


def test_a_clients_400_neither_resets_nor_adds_to_the_breakers_run_of_failures():
    only = target(next(_ids))
    model = policy_route("failover", only, breaker_failure_threshold=2, same_deployment_retries=0)

    for outcome in [unavailable_503(), context_too_long(), unavailable_503()]:
        run(model, {only.deployment_id: [outcome]})

    assert shared_state.breakers.state_of(only) == "open"
    health = shared_state.health.view(only.deployment_id)
    assert health.success_rate == 0.0 and round(health.calls) == 2  # the 400 left no sample


def test_an_attempt_cut_off_by_the_request_deadline_counts_as_a_failure():
    only = target(next(_ids))
    model = policy_route("failover", only, breaker_failure_threshold=1, request_deadline_s=0.05)

    async def call(adapter: ProviderAdapter, target: Target) -> str:
        await asyncio.sleep(1)
        return "too late"

    async def scenario() -> ProviderError:
        with pytest.raises(ProviderError) as caught:
            await attempt_in_order(model, call, [])
        return caught.value

    assert asyncio.run(scenario()).code == "request_deadline_exceeded"
    assert shared_state.breakers.state_of(only) == "open"
    assert shared_state.health.view(only.deployment_id).success_rate == 0.0


def test_a_stream_attempt_is_measured_as_time_to_first_token_not_as_latency():
    only = target(next(_ids))

    async def opening(adapter: ProviderAdapter, target: Target) -> str:
        await asyncio.sleep(0.02)
        return "first batch"

    asyncio.run(attempt_in_order(policy_route("failover", only), opening, [], stream=True))

    health = shared_state.health.view(only.deployment_id)
    assert health.latency_ms is None and health.ttft_ms is not None and health.ttft_ms >= 20


def rate_limited() -> ProviderError:
    return ProviderError("Rate limit reached.", status=429, type="rate_limit_error", code="rate_limit_exceeded",
                         retryable=True, upstream_status=429, headers={"Retry-After": "20"})


def test_it_keeps_the_primarys_error_when_the_fallback_has_no_deployment_to_try():
    primary, spare = target(next(_ids)), dataclasses.replace(target(next(_ids)), breaker_override="open")
    model = dataclasses.replace(policy_route("failover", primary),
                                fallbacks=(("default", (policy_route("failover", spare),)),))

    answer, attempts = run(model, {primary.deployment_id: [rate_limited()], spare.deployment_id: [None]})

    assert isinstance(answer, ProviderError)
    assert (answer.status, answer.headers) == (429, {"Retry-After": "20"}) and len(attempts) == 1


def test_a_fallbacks_stream_is_bounded_by_the_fallbacks_own_policy():
    primary, spare = target(next(_ids)), target(next(_ids))
    model = dataclasses.replace(policy_route("failover", primary, stream_idle_timeout_s=0.01),
                                fallbacks=(("default", (policy_route("failover", spare),)),))

    async def events(delay_s: float) -> AsyncIterator[list[StreamEvent]]:
        await asyncio.sleep(delay_s)
        yield [StreamEvent(frame=b"data: {}\n\n", text="hello")]

    def opening(adapter: ProviderAdapter, target: Target) -> Awaitable[ChatStream]:
        async def opened() -> ChatStream:
            if target == primary:
                raise unavailable_503()
            return ChatStream(events=events(0.05), close=nothing)  # slower than the primary's idle bound
        return opened()

    async def nothing() -> None:
        return None

    async def scenario() -> list[str]:
        stream = await stream_route(model, Exchange(endpoint="chat"), opening)
        return [batch[0].text async for batch in stream.events]

    assert asyncio.run(scenario()) == ["hello"]


def test_a_pattern_routes_own_attempts_are_not_labelled_as_a_fallbacks():
    only, spare = target(next(_ids)), target(next(_ids))
    fallback = dataclasses.replace(policy_route("failover", spare), name="gpt-4o")
    pattern = dataclasses.replace(policy_route("failover", only), name="claude-*",
                                  fallbacks=(("default", (fallback,)),))
    found = RoutingTable(routes={}, loaded_at=0, patterns=(pattern,)).find("claude-3-haiku")
    assert found is not None

    _, attempts = run(found, {only.deployment_id: [unavailable_503(), unavailable_503()], spare.deployment_id: [None]})

    header = route_header("failover", attempts)
    assert [step.split("=")[0] for step in header.split("; ")[1].split(", ")] == [
        only.label, only.label, f"gpt-4o:{spare.label}"]
