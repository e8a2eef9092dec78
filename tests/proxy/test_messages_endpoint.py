"""The official anthropic SDK pointed at the gateway's /v1/messages, whatever provider serves the model.

Same keys, same routing, same ledger: one row per request with endpoint "messages", usage and cost
as the provider reported them; answers, streams and errors in Anthropic's shapes.
"""

from __future__ import annotations

from decimal import Decimal

import anthropic
import httpx
import orjson
import pytest
from anthropic.types import ToolParam
from django.db import transaction

from apps.providers.fake_upstream import BackgroundFakeUpstream
from apps.routing.models import Deployment
from tests.factories import make_provider, unique
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row, serve_kind

pytestmark = pytest.mark.usefixtures("live_db")
UPSTREAM_KINDS = ["openai", "anthropic", "gemini"]
PROMPT_TOKENS, COMPLETION_TOKENS, CACHED_TOKENS = 6, 12, 2  # the fake's figures for "hello there friend"
EXPECTED_COST = (4 * Decimal("3") + 2 * Decimal("0.3") + 12 * Decimal("15")) / 1_000_000
HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hello there friend"}]
WEATHER: ToolParam = {"name": "get_weather", "description": "Weather in a city",
                      "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                       "required": ["city"]}}


@pytest.fixture(params=UPSTREAM_KINDS)
def served(request: pytest.FixtureRequest, gateway: GatewayProcess, fake: BackgroundFakeUpstream) -> Served:
    served = serve_kind(gateway, fake.base_url, request.param, input_price="3", output_price="15", cached_price="0.3")
    fake.set_rule(served.upstream_model, cached_tokens=CACHED_TOKENS)
    return served


def test_the_anthropic_sdk_gets_an_anthropic_message_billed_as_the_provider_reported(served: Served):
    raw = served.anthropic_client().messages.with_raw_response.create(
        model=served.model, max_tokens=100, messages=HELLO)
    message = raw.parse()

    assert message.type == "message" and message.role == "assistant" and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text.startswith("Mock reply to: hello there")
    # Anthropic's terms: input_tokens excludes what was read from the cache.
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (4, 2)
    assert message.usage.output_tokens == COMPLETION_TOKENS
    row = ledger_row(raw.headers["x-request-id"])
    assert row.endpoint == "messages" and row.status == "ok"
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (6, 12, 2)
    assert row.usage_source == "provider" and row.cost_usd == EXPECTED_COST


def test_a_streamed_message_arrives_as_anthropic_events_and_is_billed_the_same(served: Served):
    with served.anthropic_client().messages.stream(model=served.model, max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]

    assert text.startswith("Mock reply to: hello there friend") and len(text.split()) == COMPLETION_TOKENS
    assert final.stop_reason == "end_turn" and final.content[0].type == "text" and final.content[0].text == text
    assert final.usage.output_tokens == COMPLETION_TOKENS
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens) == (4, 2)
    row = ledger_row(request_id)
    assert row.endpoint == "messages" and row.stream and row.usage_source == "provider"
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (6, 12, 2)
    assert row.cost_usd == EXPECTED_COST


def test_tools_come_back_as_tool_use_blocks(served: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(served.upstream_model, tool_call=True)
    message = served.anthropic_client().messages.create(
        model=served.model, max_tokens=100, tools=[WEATHER], messages=[{"role": "user", "content": "Paris?"}])

    assert message.stop_reason == "tool_use"
    block = message.content[-1]
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "mock"} and block.id


def test_streamed_tool_use_is_assembled_by_the_sdk(served: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(served.upstream_model, tool_call=True)
    with served.anthropic_client().messages.stream(
        model=served.model, max_tokens=100, tools=[WEATHER], messages=[{"role": "user", "content": "Paris?"}]
    ) as stream:
        final = stream.get_final_message()

    block = final.content[-1]
    assert final.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "mock"}


def test_a_tool_result_conversation_reaches_the_provider_translated(served: Served, fake: BackgroundFakeUpstream):
    client = served.anthropic_client()
    message = client.messages.create(model=served.model, max_tokens=100, system="Be brief.", messages=[
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                                     {"type": "text", "text": "so what should I wear"}]},
    ], tools=[WEATHER])

    assert message.content[0].type == "text" and "so what should I wear" in message.content[0].text
    sent = fake.requests()[-1]["body"]
    kind = served.route.provider.kind
    if kind == "openai":
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent["messages"][2]["tool_calls"][0]["function"] == {"name": "get_weather",
                                                                    "arguments": '{"city":"Paris"}'}
        assert sent["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
    elif kind == "anthropic":
        assert sent["system"] == "Be brief."
        assert sent["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_1",
                                                     "content": "sunny"}
    else:
        assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
        assert sent["contents"][2]["parts"][0] == {
            "functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}}


def test_provider_errors_reach_the_sdk_in_anthropics_shape(served: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(served.upstream_model, fail_status=429, retry_after=3)
    with pytest.raises(anthropic.RateLimitError) as caught:
        served.anthropic_client().messages.create(model=served.model, max_tokens=10, messages=HELLO)

    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert set(body["error"]) == {"type", "message"}
    assert caught.value.response.headers["retry-after"] == "3"


def test_it_accepts_the_gateway_key_as_a_bearer_token_too(served: Served):
    response = served.post({"model": served.model, "max_tokens": 10, "messages": HELLO}, path="/v1/messages")

    assert response.status_code == 200 and response.json()["type"] == "message"


def test_a_wrong_key_and_an_unknown_model_are_anthropic_errors(served: Served):
    with pytest.raises(anthropic.AuthenticationError) as unauthenticated:
        anthropic.Anthropic(base_url=served.gateway.url, api_key="sk-edge-wrong", max_retries=0).messages.create(
            model=served.model, max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.NotFoundError) as unknown:
        served.anthropic_client().messages.create(model="no-such-model", max_tokens=10, messages=HELLO)

    assert unauthenticated.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": HELLO, "max_tokens": 10}, "model"),
    ({"model": "m", "messages": HELLO}, "max_tokens"),
    ({"model": "m", "max_tokens": 10, "messages": []}, "messages"),
])
def test_a_malformed_request_is_an_invalid_request_error(served: Served, body: dict[str, object], param: str):
    response = httpx.post(f"{served.gateway.url}/v1/messages", json=body,
                          headers={"x-api-key": served.raw_key, "anthropic-version": "2023-06-01"})

    assert response.status_code == 400
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "invalid_request_error"
    assert param in response.json()["error"]["message"]


def test_a_stream_that_fails_midway_ends_with_an_anthropic_error_event(served: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(served.upstream_model, cut_stream_after=3)
    client = served.anthropic_client()
    with (pytest.raises(anthropic.APIStatusError) as caught,
          client.messages.stream(model=served.model, max_tokens=100, messages=HELLO) as stream):
        request_id = stream.response.headers["x-request-id"]
        "".join(stream.text_stream)  # the error event arrives while reading

    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "error"
    row = ledger_row(request_id)
    assert row.status == "error" and row.usage_source == "estimated" and row.completion_tokens > 0


def event_names(stream: str) -> list[str]:
    return [line.removeprefix("event: ") for line in stream.splitlines() if line.startswith("event: ")]


def stream_body(served: Served) -> dict[str, object]:
    return {"model": served.model, "max_tokens": 100, "messages": HELLO, "stream": True}


def test_a_stream_that_fails_after_content_ends_with_exactly_one_anthropic_error_event(
    served: Served, fake: BackgroundFakeUpstream
):
    fake.set_rule(served.upstream_model, cut_stream_after=3)

    response = served.post(stream_body(served), path="/v1/messages")

    frames = [frame for frame in response.text.split("\n\n") if frame.strip()]
    errors = [frame for frame in frames if '"error"' in frame]
    assert "content_block_delta" in event_names(response.text)
    assert errors == [frames[-1]] and frames[-1].startswith("event: error\n")  # one, Anthropic's, last


@pytest.mark.parametrize("first_kind", ["openai", "anthropic"])
def test_a_stream_whose_first_deployment_fails_after_message_start_fails_over_unseen(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream, fake_v1: str, live_db: None, first_kind: str
):
    served = serve_kind(gateway, fake.base_url, first_kind, max_retries=1)
    # The opening events one by one (OpenAI's role chunk; Anthropic's message_start, block start, ping), then garbage.
    fake.set_rule(served.upstream_model, malformed=True, chunk_delay_ms=50)
    with transaction.atomic():
        backup = make_provider(fake_v1)
        Deployment.objects.create(model=served.route.model, provider=backup, priority=2,
                                  upstream_model=unique("backup"), input_usd_per_mtok=Decimal("1"),
                                  output_usd_per_mtok=Decimal("1"))
    served.wait_for_provider(backup.name)

    response = served.post(stream_body(served), path="/v1/messages")

    events = event_names(response.text)
    assert response.status_code == 200 and "error" not in response.text
    assert events[0] == "message_start" and events.count("message_start") == 1 and events[-1] == "message_stop"
    assert "Mock reply to: hello there friend" in "".join(
        orjson.loads(line[6:])["delta"]["text"] for line in response.text.splitlines()
        if line.startswith("data: ") and '"text_delta"' in line)
    assert response.headers["x-edge-provider"] == backup.name
    assert "upstream_malformed_response" in response.headers["x-edge-route"]


BETA = {"anthropic-beta": "prompt-caching-2024-07-31"}


def test_an_anthropic_deployment_gets_the_request_as_sent_so_cache_control_survives(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream, live_db: None
):
    served = serve_kind(gateway, fake.base_url, "anthropic")
    system: list[anthropic.types.TextBlockParam] = [
        {"type": "text", "text": "A long shared context", "cache_control": {"type": "ephemeral"}}]
    for stream in (False, True):
        client = served.anthropic_client()
        if stream:
            with client.messages.stream(model=served.model, max_tokens=20, system=system, messages=HELLO,
                                        extra_body={"top_k": 5}, extra_headers=BETA) as events:
                events.get_final_message()
        else:
            client.messages.create(model=served.model, max_tokens=20, system=system, messages=HELLO,
                                   extra_body={"top_k": 5}, extra_headers=BETA)

        sent = fake.requests()[-1]["body"]
        assert fake.requests()[-1]["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
        expected = {"model": served.upstream_model, "max_tokens": 20, "system": system, "top_k": 5,
                    "messages": HELLO}
        assert sent == ({**expected, "stream": True} if stream else expected)


def test_cache_writes_through_an_anthropic_deployment_are_billed_at_its_write_price(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream, live_db: None
):
    # The native path is where the anthropic SDK's cache_control breakpoints make cache writes.
    served = serve_kind(gateway, fake.base_url, "anthropic", input_price="3", output_price="15", cached_price="0.3",
                        cache_write_price="3.75")
    fake.set_rule(served.upstream_model, cached_tokens=CACHED_TOKENS, cache_write_tokens=3)
    expected = (1 * Decimal("3") + 2 * Decimal("0.3") + 3 * Decimal("3.75") + 12 * Decimal("15")) / 1_000_000
    for stream in (False, True):
        client = served.anthropic_client()
        if stream:
            with client.messages.stream(model=served.model, max_tokens=100, messages=HELLO) as events:
                usage = events.get_final_message().usage
                request_id = events.response.headers["x-request-id"]
        else:
            raw = client.messages.with_raw_response.create(model=served.model, max_tokens=100, messages=HELLO)
            usage, request_id = raw.parse().usage, raw.headers["x-request-id"]

        assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (1, 2, 3)
        row = ledger_row(request_id)
        assert (row.prompt_tokens, row.cached_tokens, row.cache_write_tokens) == (6, 2, 3)
        assert row.cache_write_usd_per_mtok == Decimal("3.75") and row.cost_usd == expected


def test_it_fails_over_from_an_overloaded_anthropic_deployment_to_an_openai_one(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream, fake_v1: str, live_db: None
):
    served = serve_kind(gateway, fake.base_url, "anthropic", max_retries=1)
    fake.set_rule(served.upstream_model, fail_status=529)
    with transaction.atomic():
        backup = make_provider(fake_v1)
        Deployment.objects.create(model=served.route.model, provider=backup, priority=2, upstream_model="backup",
                                  input_usd_per_mtok=Decimal("1"), output_usd_per_mtok=Decimal("1"))
    served.wait_for_provider(backup.name)
    for stream in (False, True):
        client = served.anthropic_client()
        message: anthropic.types.Message
        if stream:
            with client.messages.stream(model=served.model, max_tokens=20, messages=HELLO) as events:
                message = events.get_final_message()
        else:
            message = client.messages.create(model=served.model, max_tokens=20, messages=HELLO)

        assert message.type == "message" and message.content[0].type == "text"
        assert message.content[0].text.startswith("Mock reply to: hello there friend")
        assert fake.requests()[-1]["body"]["model"] == "backup"
