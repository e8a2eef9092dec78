"""The official openai SDK through Anthropic, Gemini and Azure OpenAI deployments on the fake upstream.

The client cannot tell the providers apart: OpenAI-shaped answers and errors, tool calls, and a
ledger whose usage and Decimal cost equal what the provider reported (cached tokens at the cached
price), streamed or not.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionToolParam

from apps.providers.fake_upstream import BackgroundFakeUpstream
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row, serve_kind

pytestmark = pytest.mark.usefixtures("live_db")
KINDS = ["anthropic", "gemini", "azure_openai"]
PRICES = {"input_price": "3", "output_price": "15", "cached_price": "0.3"}
# The fake's contract (apps/providers/fake_upstream/content.py): "hello there friend" is 3 words + 3 per
# message; the reply is 12 words; 2 of the prompt tokens are reported as read from the cache.
PROMPT_TOKENS, COMPLETION_TOKENS, CACHED_TOKENS = 6, 12, 2
CACHE_WRITE_TOKENS = 3  # Anthropic only: of the prompt tokens not read from the cache, 3 are written to it
EXPECTED_COST = (
    (PROMPT_TOKENS - CACHED_TOKENS) * Decimal("3") + CACHED_TOKENS * Decimal("0.3") + COMPLETION_TOKENS * Decimal("15")
) / 1_000_000
WEATHER: ChatCompletionToolParam = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                          "required": ["city"]},
}}


@pytest.fixture(params=KINDS)
def on_kind(request: pytest.FixtureRequest, gateway: GatewayProcess, fake: BackgroundFakeUpstream) -> Served:
    served = serve_kind(gateway, fake.base_url, request.param, **PRICES)
    fake.set_rule(served.upstream_model, cached_tokens=CACHED_TOKENS)
    return served


def test_the_openai_sdk_gets_an_openai_completion_billed_as_the_provider_reported(on_kind: Served):
    raw = on_kind.client().chat.completions.with_raw_response.create(
        model=on_kind.model, messages=[{"role": "user", "content": "hello there friend"}])
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert (completion.choices[0].message.content or "").startswith("Mock reply to: hello there friend")
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == CACHED_TOKENS
    row = ledger_row(raw.headers["x-request-id"])
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (6, 12, 2)
    assert row.usage_source == "provider" and row.cost_usd == EXPECTED_COST
    assert raw.headers["x-edge-cost-usd"] == f"{EXPECTED_COST:.10f}"
    assert raw.headers["x-edge-provider"] == on_kind.route.provider.name


def test_a_stream_is_billed_exactly_like_the_same_request_unstreamed(on_kind: Served):
    # The client does not ask for the usage chunk: the gateway bills from the provider's figures anyway.
    raw = on_kind.client().chat.completions.with_raw_response.create(
        model=on_kind.model, messages=[{"role": "user", "content": "hello there friend"}], stream=True)
    chunks = list(raw.parse())

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.startswith("Mock reply to: hello there friend") and len(text.split()) == COMPLETION_TOKENS
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)  # not asked for, not sent
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    row = ledger_row(raw.headers["x-request-id"])
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (6, 12, 2)
    assert row.usage_source == "provider" and row.stream and row.cost_usd == EXPECTED_COST


def test_a_stream_carries_usage_at_the_end_when_the_client_asks(on_kind: Served):
    chunks = list(on_kind.client().chat.completions.create(
        model=on_kind.model, messages=[{"role": "user", "content": "hello there friend"}], stream=True,
        stream_options={"include_usage": True}))

    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)


def test_tool_calls_come_back_as_openai_tool_calls(on_kind: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(on_kind.upstream_model, tool_call=True)
    completion = on_kind.client().chat.completions.create(
        model=on_kind.model, messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER])

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = (choice.message.tool_calls or [])[0]
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather" and orjson.loads(call.function.arguments) == {"city": "mock"}


def test_streamed_tool_calls_arrive_as_argument_deltas(on_kind: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(on_kind.upstream_model, tool_call=True)
    stream = on_kind.client().chat.completions.create(
        model=on_kind.model, messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER],
        stream=True)

    names, arguments, finish = "", "", None
    for chunk in stream:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            names += (delta.function.name or "") if delta.function else ""
            arguments += (delta.function.arguments or "") if delta.function else ""
        finish = (chunk.choices[0].finish_reason if chunk.choices else None) or finish
    assert names == "get_weather" and orjson.loads(arguments) == {"city": "mock"} and finish == "tool_calls"


@pytest.mark.parametrize(("status", "error_class"), [
    (429, openai.RateLimitError), (400, openai.BadRequestError), (401, openai.InternalServerError),
    (500, openai.InternalServerError),
])
def test_provider_errors_reach_the_sdk_as_openai_errors(on_kind: Served, fake: BackgroundFakeUpstream, status: int,
                                                        error_class: type[openai.APIStatusError]):
    fake.set_rule(on_kind.upstream_model, fail_status=status)
    with pytest.raises(error_class) as caught:
        on_kind.client().chat.completions.create(
            model=on_kind.model, messages=[{"role": "user", "content": "hi"}])

    error = caught.value.body
    assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}
    if status == 401:
        assert error["code"] == "upstream_auth_failed"  # the gateway's credentials, not the client's


def test_an_overloaded_anthropic_answer_is_a_503_the_sdk_retries(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream, live_db: None
):
    served = serve_kind(gateway, fake.base_url, "anthropic")
    fake.set_rule(served.upstream_model, fail_status=529)
    with pytest.raises(openai.InternalServerError) as caught:
        served.client().chat.completions.create(model=served.model, messages=[{"role": "user", "content": "hi"}])

    assert caught.value.status_code == 503
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "upstream_overloaded"


def test_azure_requests_go_to_the_deployment_with_the_configured_api_version(
    serve_with: Callable[..., Served], gateway: GatewayProcess, fake: BackgroundFakeUpstream
):
    served = serve_kind(gateway, fake.base_url, "azure_openai", api_version="2025-04-01-preview")
    served.client().chat.completions.create(model=served.model, messages=[{"role": "user", "content": "hi"}])

    sent = fake.requests()[-1]
    assert sent["path"] == f"/openai/deployments/{served.upstream_model}/chat/completions"
    assert sent["query"] == {"api-version": "2025-04-01-preview"}
    assert sent["headers"]["api-key"] == "sk-upstream" and "authorization" not in sent["headers"]


def test_a_stream_cut_midway_ends_in_an_error_and_is_billed_from_what_was_relayed(
    on_kind: Served, fake: BackgroundFakeUpstream
):
    fake.set_rule(on_kind.upstream_model, cut_stream_after=3)
    raw = on_kind.client().chat.completions.with_raw_response.create(
        model=on_kind.model, messages=[{"role": "user", "content": "hello there friend"}], stream=True)
    relayed: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in raw.parse():
            if chunk.choices:
                relayed.append(chunk.choices[0].delta.content or "")

    row = ledger_row(raw.headers["x-request-id"])
    assert row.status == "error" and row.error_type in {"upstream_unreachable", "upstream_stream_incomplete"}
    assert row.usage_source == "estimated" and row.completion_tokens > 0 and row.cost_usd > 0
    assert "".join(relayed).startswith("Mock reply")


def test_a_provider_that_reports_no_usage_is_billed_from_an_estimate(on_kind: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(on_kind.upstream_model, no_usage=True)
    for stream in (False, True):
        raw = on_kind.client().chat.completions.with_raw_response.create(
            model=on_kind.model, messages=[{"role": "user", "content": "hello there friend"}], stream=stream)
        if stream:
            list(raw.parse())
        row = ledger_row(raw.headers["x-request-id"])
        assert row.usage_source == "estimated" and row.prompt_tokens > 0 and row.completion_tokens > 0


@pytest.mark.parametrize(("write_price", "billed_write_price"), [("3.75", Decimal("3.75")), (None, Decimal("3"))],
                         ids=["at-the-write-price", "blank-write-price-is-the-input-price"])
def test_anthropic_cache_writes_are_part_of_the_prompt_and_billed_at_the_write_price(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream, live_db: None, write_price: str | None,
    billed_write_price: Decimal,
):
    served = serve_kind(gateway, fake.base_url, "anthropic", **PRICES, cache_write_price=write_price)
    fake.set_rule(served.upstream_model, cached_tokens=CACHED_TOKENS, cache_write_tokens=CACHE_WRITE_TOKENS)
    plain = PROMPT_TOKENS - CACHED_TOKENS - CACHE_WRITE_TOKENS  # the fake's input_tokens
    expected = (plain * Decimal("3") + CACHED_TOKENS * Decimal("0.3") + CACHE_WRITE_TOKENS * billed_write_price
                + COMPLETION_TOKENS * Decimal("15")) / 1_000_000
    for stream in (False, True):
        raw = served.client().chat.completions.with_raw_response.create(
            model=served.model, messages=[{"role": "user", "content": "hello there friend"}], stream=stream)
        if stream:
            list(raw.parse())
        row = ledger_row(raw.headers["x-request-id"])
        assert (row.prompt_tokens, row.cached_tokens, row.cache_write_tokens, row.completion_tokens) == (6, 2, 3, 12)
        assert (row.input_usd_per_mtok, row.output_usd_per_mtok, row.cached_input_usd_per_mtok,
                row.cache_write_usd_per_mtok) == (Decimal("3"), Decimal("15"), Decimal("0.3"), billed_write_price)
        assert row.stream == stream and row.cost_usd == expected
        if not stream:  # a stream's headers leave before its cost is known
            assert raw.headers["x-edge-cost-usd"] == f"{expected:.10f}"
