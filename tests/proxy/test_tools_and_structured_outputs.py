"""Tools and structured outputs through the gateway, with the official SDKs, on every provider kind.

The fake upstream calls a tool when tool_choice forces one and answers JSON that fits a requested
schema, in each provider's own wire format (apps/providers/fake_upstream/directives.py). So what
the SDK gets back shows that the gateway carried the tools, the choice, the schema and the call
there and back, whichever format the deployment speaks.
"""

from __future__ import annotations

from typing import Any, Literal

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessage, ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel

from apps.providers.fake_upstream import BackgroundFakeUpstream
from apps.providers.fake_upstream.gemini_wire import THOUGHT_SIGNATURE
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, serve, serve_kind

pytestmark = pytest.mark.usefixtures("live_db")
KINDS = ["openai", "anthropic", "gemini"]
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "weather in Paris please"}]


class GetWeather(BaseModel):
    """The weather in a city, over some days."""

    city: str
    unit: Literal["celsius", "fahrenheit"]
    days: int


class Forecast(BaseModel):
    city: str
    high_c: float
    sky: Literal["sunny", "cloudy"]


WEATHER_TOOL = openai.pydantic_function_tool(GetWeather, name="get_weather")
CLOCK_TOOL: ChatCompletionToolParam = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {}}}}
WEATHER_ARGUMENTS = {"city": "mock", "unit": "celsius", "days": 1}
FORECAST = Forecast(city="mock", high_c=1.5, sky="sunny")
ANTHROPIC_WEATHER: Any = {"name": "get_weather", "description": "The weather in a city",
                          "input_schema": GetWeather.model_json_schema()}


@pytest.fixture(params=KINDS)
def on_kind(request: pytest.FixtureRequest, gateway: GatewayProcess, fake: BackgroundFakeUpstream) -> Served:
    return serve_kind(gateway, fake.base_url, request.param)


def kind_of(served: Served) -> str:
    return served.route.provider.kind


def test_a_named_tool_is_called_and_its_result_reaches_the_provider_in_its_own_format(on_kind: Served, fake):
    client = on_kind.client()
    first = client.chat.completions.create(
        model=on_kind.model, messages=ASK, tools=[CLOCK_TOOL, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = (first.choices[0].message.tool_calls or [])[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert first.choices[0].finish_reason == "tool_calls"
    assert orjson.loads(call.function.arguments) == WEATHER_ARGUMENTS

    second = client.chat.completions.create(model=on_kind.model, tools=[CLOCK_TOOL, WEATHER_TOOL], messages=[
        *ASK, {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
    ])

    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content
    assert tool_result_sent(kind_of(on_kind), fake.requests()[-1]["body"], call.id) == "18 degrees and sunny"


def tool_result_sent(kind: str, body: dict[str, Any], call_id: str) -> str:
    """The tool result as the provider got it: a tool message, a tool_result block, a functionResponse."""
    if kind == "anthropic":
        block = body["messages"][-1]["content"][0]
        assert block["type"] == "tool_result" and block["tool_use_id"] == call_id
        return str(block["content"])
    if kind == "gemini":
        response = body["contents"][-1]["parts"][0]["functionResponse"]
        assert response["name"] == "get_weather"
        return str(response["response"]["content"])
    assert body["messages"][-1]["tool_call_id"] == call_id
    return str(body["messages"][-1]["content"])


def test_a_required_choice_is_carried_without_any_rule_on_the_provider(on_kind: Served):
    completion = on_kind.client().chat.completions.create(
        model=on_kind.model, messages=ASK, tools=[CLOCK_TOOL, WEATHER_TOOL], tool_choice="required")

    call = (completion.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_time" and orjson.loads(call.function.arguments) == {}  # type: ignore[union-attr]


def test_a_none_choice_is_carried_too(on_kind: Served, fake: BackgroundFakeUpstream):
    fake.set_rule(on_kind.upstream_model, tool_call=True)  # the model would call a tool if allowed to

    completion = on_kind.client().chat.completions.create(
        model=on_kind.model, messages=ASK, tools=[WEATHER_TOOL], tool_choice="none")

    assert completion.choices[0].message.tool_calls is None and completion.choices[0].finish_reason == "stop"


def test_streamed_tool_call_deltas_are_reassembled_by_the_sdk_into_a_parsed_call(on_kind: Served):
    with on_kind.client().chat.completions.stream(
        model=on_kind.model, messages=ASK, tools=[WEATHER_TOOL], tool_choice="required",
    ) as stream:
        fragments = [e for e in stream if e.type == "tool_calls.function.arguments.delta" and e.arguments_delta]
        final = stream.get_final_completion()

    call = (final.choices[0].message.tool_calls or [])[0]
    # Gemini sends a call whole; OpenAI's and Anthropic's arguments arrive in the fake's 4 fragments.
    assert len(fragments) == (1 if kind_of(on_kind) == "gemini" else 4)
    assert final.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert call.function.parsed_arguments == GetWeather(city="mock", unit="celsius", days=1)


def test_a_pydantic_response_format_is_parsed_by_the_sdk(on_kind: Served, fake):
    completion = on_kind.client().chat.completions.parse(
        model=on_kind.model, messages=ASK, response_format=Forecast)

    assert completion.choices[0].message.parsed == FORECAST
    assert schema_sent(kind_of(on_kind), fake.requests()[-1]["body"]) == openai.lib._pydantic.to_strict_json_schema(
        Forecast)


def schema_sent(kind: str, body: dict[str, Any]) -> Any:
    """The output schema as the provider got it: response_format, output_config.format, generationConfig."""
    if kind == "anthropic":
        return body["output_config"]["format"]["schema"]
    if kind == "gemini":
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        return body["generationConfig"]["responseJsonSchema"]
    return body["response_format"]["json_schema"]["schema"]


def test_a_streamed_structured_output_is_parsed_by_the_sdk_at_the_end(on_kind: Served):
    with on_kind.client().chat.completions.stream(
        model=on_kind.model, messages=ASK, response_format=Forecast,
    ) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.parsed == FORECAST


def test_a_json_object_response_format_gets_a_json_object(on_kind: Served):
    completion = on_kind.client().chat.completions.create(
        model=on_kind.model, messages=ASK, response_format={"type": "json_object"})

    assert isinstance(orjson.loads(completion.choices[0].message.content or ""), dict)


def test_the_anthropic_sdk_uses_tools_through_messages_on_every_kind(on_kind: Served, fake):
    client = on_kind.anthropic_client()
    message = client.messages.create(
        model=on_kind.model, max_tokens=200, messages=[{"role": "user", "content": "weather in Paris please"}],
        tools=[ANTHROPIC_WEATHER], tool_choice={"type": "tool", "name": "get_weather"})
    block = message.content[-1]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == WEATHER_ARGUMENTS

    conversation: Any = [
        {"role": "user", "content": "weather in Paris please"},
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": block.id, "content": "18 degrees and sunny"}]},
    ]
    with client.messages.stream(model=on_kind.model, max_tokens=200, tools=[ANTHROPIC_WEATHER],
                                messages=conversation) as stream:
        final = stream.get_final_message()

    assert final.stop_reason == "end_turn" and final.content[0].type == "text"
    assert tool_result_sent(kind_of(on_kind), fake.requests()[-1]["body"], block.id) == "18 degrees and sunny"


def test_the_anthropic_sdk_streams_tool_use_from_every_kind(on_kind: Served):
    with on_kind.anthropic_client().messages.stream(
        model=on_kind.model, max_tokens=200, messages=[{"role": "user", "content": "weather in Paris please"}],
        tools=[ANTHROPIC_WEATHER], tool_choice={"type": "any"},
    ) as stream:
        final = stream.get_final_message()

    block = final.content[-1]
    assert final.stop_reason == "tool_use" and block.type == "tool_use" and block.input == WEATHER_ARGUMENTS


def test_the_anthropic_sdk_parses_structured_output_from_every_kind(on_kind: Served):
    message = on_kind.anthropic_client().messages.parse(
        model=on_kind.model, max_tokens=200, messages=[{"role": "user", "content": "forecast please"}],
        output_format=Forecast)

    assert message.parsed_output == FORECAST


def test_an_anthropic_base_url_without_v1_works_as_anthropics_sdk_writes_it(gateway: GatewayProcess, fake):
    served = serve(gateway, fake.base_url, kind="anthropic")  # http://host:port, no /v1

    completion = served.client().chat.completions.create(model=served.model, messages=ASK)
    message = served.anthropic_client().messages.create(
        model=served.model, max_tokens=50, messages=[{"role": "user", "content": "hi"}])

    assert (completion.choices[0].message.content or "").startswith("Mock reply to: weather in Paris")
    assert message.content[0].type == "text" and message.content[0].text.startswith("Mock reply to: hi")
    assert [request["path"] for request in fake.requests()[-2:]] == ["/v1/messages", "/v1/messages"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_geminis_thought_signature_goes_to_the_client_and_comes_back_with_the_call(
    gateway: GatewayProcess, fake, stream: bool,
):
    served = serve_kind(gateway, fake.base_url, "gemini")
    client = served.client()
    answer: ChatCompletionMessage
    if stream:
        with client.chat.completions.stream(model=served.model, messages=ASK, tools=[WEATHER_TOOL],
                                            tool_choice="required") as events:
            answer = events.get_final_completion().choices[0].message
    else:
        answer = client.chat.completions.create(model=served.model, messages=ASK, tools=[WEATHER_TOOL],
                                                tool_choice="required").choices[0].message
    call = (answer.tool_calls or [])[0]
    assert (call.model_extra or {}).get("extra_content") == {"google": {"thought_signature": THOUGHT_SIGNATURE}}

    # As Google's guide for its OpenAI-compatible API has it: append the message the SDK returned.
    history: Any = [*ASK, answer, {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}]
    client.chat.completions.create(model=served.model, messages=history, tools=[WEATHER_TOOL])

    part = fake.requests()[-1]["body"]["contents"][1]["parts"][0]
    assert part["functionCall"]["name"] == "get_weather" and part["thoughtSignature"] == THOUGHT_SIGNATURE


def test_allowed_tools_restrict_the_calls_on_every_kind(on_kind: Served, fake):
    completion = on_kind.client().chat.completions.create(
        model=on_kind.model, messages=ASK, tools=[CLOCK_TOOL, WEATHER_TOOL],
        tool_choice={"type": "allowed_tools", "allowed_tools": {
            "mode": "required", "tools": [{"type": "function", "function": {"name": "get_weather"}}]}})

    call = (completion.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]  # the first tool offered is get_time
    if kind_of(on_kind) != "openai":  # OpenAI keeps the whole list; the others are offered what is allowed
        assert offered_names(kind_of(on_kind), fake.requests()[-1]["body"]) == ["get_weather"]


def offered_names(kind: str, body: dict[str, Any]) -> list[str]:
    if kind == "anthropic":
        return [tool["name"] for tool in body["tools"]]
    return [declaration["name"] for declaration in body["tools"][0]["functionDeclarations"]]
