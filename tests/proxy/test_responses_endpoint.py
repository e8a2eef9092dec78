"""The official openai SDK's Responses API pointed at the gateway, whatever provider kind serves the model.

An openai deployment gets the Responses API as sent; anthropic and gemini deployments get a chat
translation, and the answer and the stream come back as Responses output items and events. Same keys,
routing and ledger as every endpoint: one row per request, endpoint "responses", the provider's usage.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import orjson
import pytest
from django.db import transaction
from openai.types.responses import FunctionToolParam

from apps.providers.fake_upstream import BackgroundFakeUpstream
from apps.providers.fake_upstream.gemini_wire import THOUGHT_SIGNATURE
from apps.routing.models import Deployment
from tests.conftest import wait_until_served
from tests.factories import make_key, make_provider, make_tenant, unique
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row, serve_kind

pytestmark = pytest.mark.usefixtures("live_db")
UPSTREAM_KINDS = ["openai", "anthropic", "gemini"]
# The fake's figures for "hello there friend": 3 words + 3 per message in, 12 words out, 2 of them cached.
EXPECTED_COST = (4 * Decimal("3") + 2 * Decimal("0.3") + 12 * Decimal("15")) / 1_000_000
WEATHER: FunctionToolParam = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
           "strict": False}
PATH = "/v1/responses"


@pytest.fixture(params=UPSTREAM_KINDS)
def served(request: pytest.FixtureRequest, gateway: GatewayProcess, fake: BackgroundFakeUpstream) -> Served:
    served = serve_kind(gateway, fake.base_url, request.param, input_price="3", output_price="15", cached_price="0.3")
    fake.set_rule(served.upstream_model, cached_tokens=2)
    return served


def test_a_text_response_is_billed_as_the_provider_reported(served: Served):
    raw = served.client().responses.with_raw_response.create(model=served.model, input="hello there friend")
    response = raw.parse()

    assert response.object == "response" and response.status == "completed" and response.id.startswith("resp_")
    assert response.output_text.startswith("Mock reply to: hello there friend")
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (6, 12)
    assert response.usage.input_tokens_details.cached_tokens == 2
    row = ledger_row(raw.headers["x-request-id"])
    assert row.endpoint == "responses" and row.status == "ok" and row.usage_source == "provider"
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (6, 12, 2)
    assert row.cost_usd == EXPECTED_COST


def test_a_streamed_response_arrives_as_numbered_responses_events(served: Served):
    with served.client().responses.stream(model=served.model, input="hello there friend") as stream:
        events = list(stream)
        final = stream.get_final_response()
        request_id = stream._response.headers["x-request-id"]  # the SDK keeps the HTTP response private

    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert {"response.output_item.added", "response.content_part.added", "response.output_text.delta",
            "response.output_text.done", "response.output_item.done"} <= set(kinds)
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == final.output_text and text.startswith("Mock reply to: hello there friend")
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (6, 12)
    row = ledger_row(request_id)
    assert row.endpoint == "responses" and row.stream and row.usage_source == "provider"
    assert row.cost_usd == EXPECTED_COST


def test_a_function_call_round_trip_continues_from_the_stored_response(served: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(served.upstream_model, tool_call=True)
    client = served.client()
    first = client.responses.create(model=served.model, input="weather in Paris?", tools=[WEATHER])

    call = first.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "mock"}
    fake.set_rule(served.upstream_model, tool_call=False)
    second = client.responses.create(
        model=served.model, previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )

    assert second.status == "completed" and second.output_text.startswith("Mock reply to:")
    sent = fake.requests()[-1]["body"]
    assert "previous_response_id" not in sent  # the gateway, not the provider, holds the conversation
    conversation = orjson.dumps(sent).decode()
    assert "weather in Paris?" in conversation and "sunny" in conversation
    if served.route.provider.kind == "gemini":  # Gemini pairs calls by name, and wants its thought signature back
        call_part = next(part for content in sent["contents"] for part in content["parts"] if "functionCall" in part)
        assert call_part["thoughtSignature"] == THOUGHT_SIGNATURE
    else:
        assert call.call_id in conversation


def test_streamed_function_calls_are_assembled_by_the_sdk(served: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(served.upstream_model, tool_call=True)
    with served.client().responses.stream(model=served.model, input="Paris?", tools=[WEATHER]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()

    call = final.output[-1]
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    assert call.type == "function_call" and call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "mock"}


def test_structured_output_reaches_every_kind_as_its_own_schema(served: Served, fake: BackgroundFakeUpstream):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
              "required": ["city", "days"], "additionalProperties": False}
    response = served.client().responses.create(
        model=served.model, input="plan a trip",
        text={"format": {"type": "json_schema", "name": "trip", "schema": schema, "strict": True}})

    assert orjson.loads(response.output_text) == {"city": "mock", "days": 1}  # the fake's example of the schema
    sent = fake.requests()[-1]["body"]
    kind = served.route.provider.kind
    if kind == "openai":
        assert sent["text"]["format"]["schema"] == schema
    elif kind == "anthropic":
        assert sent["output_config"]["format"] == {"type": "json_schema", "schema": schema}
    else:
        assert sent["generationConfig"]["responseMimeType"] == "application/json"


def test_a_stored_response_is_retrieved_and_deleted(served: Served):
    client = served.client()
    created = client.responses.create(model=served.model, input="hello there friend", metadata={"ticket": "42"})

    retrieved = client.responses.retrieve(created.id)
    assert retrieved.id == created.id and retrieved.output_text == created.output_text
    assert retrieved.metadata == {"ticket": "42"}
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(created.id)
    assert gone.value.body["code"] == "not_found"  # type: ignore[index]


def test_store_false_keeps_nothing(served: Served):
    client = served.client()
    created = client.responses.create(model=served.model, input="hello there friend", store=False)

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=served.model, input="again", previous_response_id=created.id)


@pytest.mark.parametrize(("first_kind", "second_kind"), [("openai", "anthropic"), ("gemini", "openai")])
def test_a_conversation_continues_on_another_provider_kind(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream, first_kind: str, second_kind: str
):
    first = serve_kind(gateway, fake.base_url, first_kind)
    second = serve_kind(gateway, fake.base_url, second_kind)
    client = first.client()  # the first tenant's key may use every model

    turn1 = client.responses.create(model=first.model, instructions="Be brief.", input="my name is Ada")
    turn2 = client.responses.create(model=second.model, previous_response_id=turn1.id, input="what is my name")

    assert turn2.output_text.startswith("Mock reply to: what is my name")
    sent = orjson.dumps(fake.requests()[-1]["body"]).decode()
    assert "my name is Ada" in sent and turn1.output_text in sent  # both earlier turns reached the second kind
    assert "Be brief." not in sent  # instructions belong to the turn that gave them, as OpenAI has it
    assert client.responses.retrieve(turn2.id).previous_response_id == (
        turn1.id if second_kind != "openai" else None)


def test_another_tenants_response_id_is_not_found(served: Served):
    created = served.client().responses.create(model=served.model, input="hello there friend")
    _, stranger_key = make_key(make_tenant())
    stranger = openai.OpenAI(base_url=f"{served.gateway.url}/v1", api_key=stranger_key, max_retries=0)

    for attempt in (lambda: stranger.responses.retrieve(created.id), lambda: stranger.responses.delete(created.id),
                    lambda: stranger.responses.create(model=served.model, input="hi", previous_response_id=created.id)):
        with pytest.raises(openai.NotFoundError) as caught:
            attempt()
        assert caught.value.status_code == 404 and caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert served.client().responses.retrieve(created.id).id == created.id


def test_a_stream_fails_over_before_its_first_byte_to_another_kind(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream, fake_v1: str
):
    served = serve_kind(gateway, fake.base_url, "openai", max_retries=1)
    # OpenAI's opening events one by one, then garbage: nothing the client could use has been sent.
    fake.set_rule(served.upstream_model, malformed=True, chunk_delay_ms=20)
    with transaction.atomic():
        backup = make_provider(f"{fake.base_url}/v1", kind="anthropic")
        Deployment.objects.create(model=served.route.model, provider=backup, priority=2,
                                  upstream_model=unique("backup"), input_usd_per_mtok=Decimal("1"),
                                  output_usd_per_mtok=Decimal("1"))
    served.wait_for_provider(backup.name)

    with served.client().responses.stream(model=served.model, input="hello there friend") as stream:
        events = list(stream)
        final = stream.get_final_response()
        headers = stream._response.headers

    assert [event.type for event in events].count("response.created") == 1
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert final.output_text.startswith("Mock reply to: hello there friend")
    assert headers["x-edge-provider"] == backup.name and "upstream_malformed_response" in headers["x-edge-route"]
    row = ledger_row(headers["x-request-id"])
    assert row.endpoint == "responses" and row.status == "ok" and row.cost_usd == Decimal(18) / 1_000_000


def test_a_stream_that_fails_after_content_ends_with_error_and_response_failed(
    served: Served, fake: BackgroundFakeUpstream
):
    fake.set_rule(served.upstream_model, cut_stream_after=3)

    response = served.post({"model": served.model, "input": "hello there friend", "stream": True}, path=PATH)

    events = [orjson.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [event["type"] for event in events][-2:] == ["error", "response.failed"]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["id"] == events[0]["response"]["id"]
    row = ledger_row(response.headers["x-request-id"])
    assert row.status == "error" and row.usage_source == "estimated" and row.completion_tokens > 0


def test_a_built_in_tool_is_a_400_naming_it_unless_an_openai_deployment_serves_it(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream
):
    body = {"input": "news today?", "tools": [{"type": "web_search"}]}
    for kind in ("anthropic", "openai"):
        served = serve_kind(gateway, fake.base_url, kind)
        response = served.post({"model": served.model, **body}, path=PATH)

        if kind == "openai":
            assert response.status_code == 200 and fake.requests()[-1]["body"]["tools"] == [{"type": "web_search"}]
        else:
            assert response.status_code == 400
            error = response.json()["error"]
            assert error["param"] == "tools[0].type" and "web_search" in error["message"]


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "hi"}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": 5}, "input"),
    ({"model": "m", "input": [{"role": "robot", "content": "hi"}]}, "input[0].role"),
    ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"model": "m", "input": "hi", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
    ({"model": "m", "input": "hi", "temperature": 3}, "temperature"),
    ({"model": "m", "input": "hi", "max_output_tokens": 4}, "max_output_tokens"),
    ({"model": "m", "input": "hi", "metadata": {"k": 1}}, "metadata"),
    ({"model": "m", "input": "hi", "store": "yes"}, "store"),
    ({"model": "m", "input": "hi", "background": True}, "background"),
    ({"model": "m", "input": "hi", "previous_response_id": 7}, "previous_response_id"),
])
def test_a_malformed_request_is_a_400_naming_the_parameter(served: Served, body: dict[str, object], param: str):
    response = httpx.post(f"{served.gateway.url}{PATH}", json=body, headers=served.headers())

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error" and response.json()["error"]["param"] == param


def test_a_streamed_response_can_be_continued_the_moment_it_completes(served: Served):
    client = served.client()
    with client.responses.stream(model=served.model, input="my name is Ada") as stream:
        first = stream.get_final_response()

    follow_up = client.responses.create(model=served.model, previous_response_id=first.id, input="and yours")

    assert client.responses.retrieve(first.id).output_text == first.output_text
    assert follow_up.output_text.startswith("Mock reply to: and yours")


def test_a_repeated_idempotency_key_gets_the_first_response_without_another_call(
    served: Served, fake: BackgroundFakeUpstream
):
    client = served.client()
    headers = {"Idempotency-Key": unique("responses")}
    first = client.responses.create(model=served.model, input="hello there friend", extra_headers=headers)
    calls = len(fake.requests())

    again = client.responses.with_raw_response.create(model=served.model, input="hello there friend",
                                                      extra_headers=headers)

    assert again.parse().id == first.id and again.headers["Idempotent-Replayed"] == "true"
    assert len(fake.requests()) == calls


def test_a_stream_without_reported_usage_is_billed_from_an_estimate(served: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(served.upstream_model, no_usage=True)
    with served.client().responses.stream(model=served.model, input="hello there friend") as stream:
        final = stream.get_final_response()
        request_id = stream._response.headers["x-request-id"]

    row = ledger_row(request_id)
    assert row.status == "ok" and row.usage_source == "estimated"
    assert row.prompt_tokens > 0 and row.completion_tokens > 0
    if served.route.provider.kind != "openai":  # a translated stream's response says what was estimated
        assert final.usage is not None and final.usage.output_tokens == row.completion_tokens


def test_a_stored_responses_input_items_are_listed_as_the_sdk_reads_them(served: Served):
    client = served.client()
    first = client.responses.create(model=served.model, input="my name is Ada")
    second = client.responses.create(model=served.model, previous_response_id=first.id, input=[
        {"role": "user", "content": "what is my name"},
        {"role": "user", "content": [{"type": "input_text", "text": "answer briefly"}]}])

    newest_first = client.responses.input_items.list(second.id)
    oldest_first = client.responses.input_items.list(second.id, order="asc", limit=1)
    rest = client.responses.input_items.list(second.id, order="asc", after=oldest_first.data[-1].id)

    texts = [item.content[0].text for item in newest_first.data if item.type == "message"]  # type: ignore[union-attr]
    assert texts == ["answer briefly", "what is my name"]  # this request's own input, not the turn it continued
    assert oldest_first.has_next_page() and [item.id for item in rest.data] == [newest_first.data[0].id]
    assert client.responses.input_items.list(second.id).data[0].id == newest_first.data[0].id  # ids are stable


def test_a_reasoning_effort_is_carried_where_the_kind_has_one(served: Served, fake: BackgroundFakeUpstream):
    response = served.client().responses.create(model=served.model, input="think", reasoning={"effort": "low"})

    sent = fake.requests()[-1]["body"]
    assert response.status == "completed"
    kind = served.route.provider.kind
    assert sent.get("reasoning") == {"effort": "low"} if kind == "openai" else "reasoning_effort" not in sent


def test_another_gateway_process_continues_and_retrieves_the_conversation(
    gateway: GatewayProcess, second_gateway: GatewayProcess, fake: BackgroundFakeUpstream
):
    served = serve_kind(gateway, fake.base_url, "anthropic")
    first = served.client().responses.create(model=served.model, input="my name is Ada")
    elsewhere = openai.OpenAI(base_url=f"{second_gateway.url}/v1", api_key=served.raw_key, max_retries=0)
    wait_until_served(second_gateway.url, served.raw_key, served.model)

    follow_up = elsewhere.responses.create(model=served.model, previous_response_id=first.id, input="who am I")

    assert elsewhere.responses.retrieve(first.id).output_text == first.output_text  # kept in Redis, not one process
    assert follow_up.output_text.startswith("Mock reply to: who am I")
    assert "my name is Ada" in orjson.dumps(fake.requests()[-1]["body"]).decode()
