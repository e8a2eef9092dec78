"""The fake upstream answers tool calls and structured outputs the way the request asks, in every wire."""

from __future__ import annotations

import argparse
from typing import Any, Literal

import anthropic
import httpx
import jsonschema
import openai
import orjson
import pytest
from pydantic import BaseModel

from apps.providers.fake_upstream import BackgroundFakeUpstream
from apps.providers.fake_upstream.cli import add_arguments, knobs_from_options

HELLO: Any = [{"role": "user", "content": "weather in Paris please"}]
WEATHER_SCHEMA = {"type": "object", "required": ["city", "unit", "days"], "properties": {
    "city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]},
    "days": {"type": "integer", "minimum": 1, "maximum": 7}}}
TOOLS: Any = [
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}},
]
ANTHROPIC_TOOLS: Any = [{"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in TOOLS]
WEATHER_ARGUMENTS = {"city": "mock", "unit": "celsius", "days": 1}


class Forecast(BaseModel):
    city: str
    high_c: float
    sky: Literal["sunny", "cloudy"]


def test_required_tool_choice_calls_the_first_tool_without_any_rule(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="gpt-4o", messages=HELLO, tools=TOOLS, tool_choice="required")

    call = (completion.choices[0].message.tool_calls or [])[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_time" and orjson.loads(call.function.arguments) == {}  # type: ignore[union-attr]


def test_a_named_tool_is_called_with_arguments_that_fit_its_schema(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="gpt-4o", messages=HELLO, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})

    call = (completion.choices[0].message.tool_calls or [])[0]
    arguments = orjson.loads(call.function.arguments)  # type: ignore[union-attr]
    assert call.function.name == "get_weather" and arguments == WEATHER_ARGUMENTS  # type: ignore[union-attr]
    jsonschema.validate(arguments, WEATHER_SCHEMA)


@pytest.mark.parametrize(("rule", "choice", "calls"), [
    ({}, "auto", False), ({"tool_call": True}, "auto", True), ({"tool_call": True}, "none", False),
])
def test_an_auto_choice_calls_a_tool_only_when_the_rule_says_so(
    fake: BackgroundFakeUpstream, openai_client: openai.OpenAI, rule: dict[str, Any], choice: Any, calls: bool,
) -> None:
    fake.set_rule("gpt-4o", **rule)

    completion = openai_client.chat.completions.create(model="gpt-4o", messages=HELLO, tools=TOOLS,
                                                       tool_choice=choice)

    assert bool(completion.choices[0].message.tool_calls) is calls
    assert completion.choices[0].finish_reason == ("tool_calls" if calls else "stop")


def test_streamed_tool_arguments_come_in_fragments_the_sdk_reassembles(openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(
        model="gpt-4o", messages=HELLO, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        fragments = [e for e in stream if e.type == "tool_calls.function.arguments.delta" and e.arguments_delta]
        final = stream.get_final_completion()

    call = (final.choices[0].message.tool_calls or [])[0]
    assert len(fragments) == 4
    assert orjson.loads(call.function.arguments) == WEATHER_ARGUMENTS


def test_a_json_schema_response_format_is_parsed_into_the_pydantic_model(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.parse(model="gpt-4o", messages=HELLO, response_format=Forecast)

    assert completion.choices[0].message.parsed == Forecast(city="mock", high_c=1.5, sky="sunny")


def test_a_streamed_json_reply_concatenates_to_the_whole_json(openai_client: openai.OpenAI) -> None:
    chunks = list(openai_client.chat.completions.create(
        model="gpt-4o", messages=HELLO, stream=True, response_format={"type": "json_object"}))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert orjson.loads(text) == {"answer": "Mock reply to: weather in Paris please lorem ipsum dolor sit amet"}
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == len(text.split())


def test_anthropic_any_tool_choice_streams_input_json_deltas(anthropic_client: anthropic.Anthropic) -> None:
    with anthropic_client.messages.stream(model="claude-x", max_tokens=100, messages=HELLO,
                                          tools=ANTHROPIC_TOOLS, tool_choice={"type": "tool", "name": "get_weather"},
                                          ) as stream:
        deltas = [e for e in stream if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
        final = stream.get_final_message()

    block = final.content[0]
    assert len(deltas) == 4 and final.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == WEATHER_ARGUMENTS


def test_anthropic_structured_output_answers_json_text(http: httpx.Client) -> None:
    body = {"model": "claude-x", "max_tokens": 100, "messages": HELLO,
            "output_config": {"format": {"type": "json_schema", "schema": Forecast.model_json_schema()}}}

    message = http.post("/v1/messages", json=body).json()

    assert message["content"][0]["type"] == "text"
    assert Forecast.model_validate_json(message["content"][0]["text"]) == Forecast(city="mock", high_c=1.5, sky="sunny")


def test_anthropic_count_tokens_counts_the_prompt_as_a_message_would(anthropic_client: anthropic.Anthropic) -> None:
    counted = anthropic_client.messages.count_tokens(model="claude-x", system="Be brief.", messages=HELLO)
    message = anthropic_client.messages.create(model="claude-x", max_tokens=10, system="Be brief.", messages=HELLO)

    assert counted.input_tokens == message.usage.input_tokens == 2 + 4 + 3


def test_gemini_any_mode_calls_an_allowed_function(http: httpx.Client) -> None:
    declarations = [{"name": t["function"]["name"], "parametersJsonSchema": t["function"]["parameters"]} for t in TOOLS]
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": declarations}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}}

    answer = http.post("/v1beta/models/gemini-x:generateContent", json=body).json()

    assert answer["candidates"][0]["content"]["parts"][0]["functionCall"] == {
        "name": "get_weather", "args": WEATHER_ARGUMENTS}


def test_gemini_json_mode_streams_json_that_fits_an_openapi_response_schema(http: httpx.Client) -> None:
    schema = {"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"}},
              "required": ["city", "days"]}
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema}}

    response = http.post("/v1beta/models/gemini-x:streamGenerateContent", params={"alt": "sse"}, json=body)

    events = [orjson.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    text = "".join(part.get("text", "") for event in events for part in event["candidates"][0]["content"]["parts"])
    assert orjson.loads(text) == {"city": "mock", "days": 1}


def test_the_command_line_can_turn_tool_calls_on_for_every_model_and_its_help_says_how() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    knobs = knobs_from_options(vars(parser.parse_args(["--tool-call"])))

    assert knobs.tool_call and not knobs_from_options(vars(parser.parse_args([]))).tool_call
    assert "tool_choice forces one" in parser.format_help() and "reported_usage=None" in parser.format_help()
