"""The Anthropic adapter against recorded Messages API responses: what it sends, what it makes of the answers."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from apps.providers.adapters.anthropic import AnthropicAdapter
from apps.providers.contracts import ChatRequest, Usage
from apps.providers.errors import ProviderError
from tests.providers.replay import Replay, chunks, drain, transcript, upstream

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city", "parameters": WEATHER_SCHEMA,
}}
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
    {"role": "user", "content": [
        {"type": "text", "text": "What is the weather where these photos were taken?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/rome.jpg"}},
    ]},
    {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
    ]},
    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C and sunny"},
    {"role": "tool", "tool_call_id": "toolu_2", "content": "24C and cloudy"},
]


def adapter() -> AnthropicAdapter:
    return AnthropicAdapter(upstream("anthropic", "https://api.anthropic.com/v1"))


def chat(stream: bool = False, **params: Any) -> ChatRequest:
    body = {"model": "claude", "messages": CONVERSATION, **params}
    return ChatRequest(model="claude", body=body, stream=stream, include_usage=False)


def test_it_translates_the_whole_conversation_into_a_messages_request():
    replay = Replay("anthropic/message_text.json")
    replay.run(lambda: adapter().chat(
        chat(tools=[WEATHER_TOOL], tool_choice="required", parallel_tool_calls=False, stop="END",
             temperature=0.2, top_p=0.9, max_completion_tokens=300, user="u-7", seed=1),
        upstream_model="claude-sonnet-4-5"))

    assert str(replay.request.url) == "https://api.anthropic.com/v1/messages"
    assert replay.request.headers["x-api-key"] == "sk-recorded"
    assert replay.request.headers["anthropic-version"] == "2023-06-01"
    assert replay.request.headers["x-team"] == "ml"
    assert "authorization" not in replay.request.headers
    assert replay.body == {
        "model": "claude-sonnet-4-5",
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is the weather where these photos were taken?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/rome.jpg"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
            ]},
            {"role": "user", "content": [  # both results of the parallel calls, in one turn
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C and sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24C and cloudy"},
            ]},
        ],
        "max_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "tools": [{"name": "get_weather", "description": "Weather in a city",
                   "input_schema": WEATHER_SCHEMA}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u-7"},
    }


@pytest.mark.parametrize(("response_format", "expected"), [
    ({"type": "json_schema", "json_schema": {"name": "a", "schema": WEATHER_SCHEMA}},
     {"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}}),
    ({"type": "json_object"}, {"format": {"type": "json_schema", "schema": {"type": "object"}}}),
    ({"type": "text"}, None),
])
def test_it_maps_response_format_to_structured_outputs(response_format, expected):
    replay = Replay("anthropic/message_text.json")
    replay.run(lambda: adapter().chat(chat(response_format=response_format), upstream_model="c"))

    assert replay.body.get("output_config") == expected


def test_it_sends_anthropics_required_max_tokens_when_the_client_gave_none():
    replay = Replay("anthropic/message_text.json")
    replay.run(lambda: adapter().chat(chat(), upstream_model="claude"))

    assert replay.body["max_tokens"] == 4096
    assert "stream" not in replay.body


@pytest.mark.parametrize(("tool_choice", "expected"), [
    ("auto", {"type": "auto"}),
    ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
])
def test_it_maps_each_tool_choice(tool_choice, expected):
    replay = Replay("anthropic/message_text.json")
    replay.run(lambda: adapter().chat(chat(tools=[WEATHER_TOOL], tool_choice=tool_choice), upstream_model="c"))

    assert replay.body["tool_choice"] == expected


def test_it_answers_with_an_openai_completion_and_counts_cache_reads_and_writes_in_the_prompt():
    answer = Replay("anthropic/message_text.json").run(lambda: adapter().chat(chat(), upstream_model="c"))

    completion = ChatCompletion.model_validate_json(answer.content)
    assert completion.choices[0].message.content == "Paris is the capital of France."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 21 + 2048 + 150
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 2048
    assert answer.usage == Usage(prompt_tokens=2219, completion_tokens=9, cached_tokens=2048, source="provider",
                                 cache_creation_tokens=150)


def test_it_turns_tool_use_blocks_into_parallel_tool_calls():
    answer = Replay("anthropic/message_tool_use.json").run(lambda: adapter().chat(chat(), upstream_model="c"))

    choice = ChatCompletion.model_validate_json(answer.content).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking both cities."
    calls = choice.message.tool_calls or []
    assert [(call.id, call.function.name, call.function.arguments) for call in calls] == [  # type: ignore[union-attr]
        ("toolu_01PaRisXyZ", "get_weather", '{"city":"Paris","unit":"celsius"}'),
        ("toolu_01RoMeAbC", "get_weather", '{"city":"Rome","unit":"celsius"}'),
    ]


def test_it_reports_max_tokens_as_length_and_leaves_thinking_out():
    answer = Replay("anthropic/message_max_tokens.json").run(lambda: adapter().chat(chat(), upstream_model="c"))

    choice = ChatCompletion.model_validate_json(answer.content).choices[0]
    assert (choice.finish_reason, choice.message.content) == ("length", "Once upon a")


def test_it_refuses_n_greater_than_one_so_routing_can_try_another_deployment():
    replay = Replay("anthropic/message_text.json")
    with pytest.raises(ProviderError) as error:
        replay.run(lambda: adapter().chat(chat(n=2), upstream_model="c"))

    assert error.value.retryable and error.value.code == "unsupported_by_provider"
    assert replay.sent == []


def test_it_streams_text_as_openai_chunks_with_usage_at_the_end():
    replay = Replay("anthropic/stream_text.sse")
    events = replay.run(lambda: _stream(chat(stream=True)))

    assert replay.body["stream"] is True
    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in chunks(events)]
    assert parsed[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in parsed if c.choices) == "Hello there, friend."
    assert [c.choices[0].finish_reason for c in parsed if c.choices][-1] == "stop"
    assert events[-1].frame == b"data: [DONE]\n\n"
    usage_events = [event for event in events if event.usage is not None]
    assert len(usage_events) == 1 and usage_events[0].usage_only
    assert usage_events[0].usage == Usage(prompt_tokens=25 + 1000 + 40, completion_tokens=15, cached_tokens=1000,
                                          source="provider", cache_creation_tokens=40)
    assert parsed[-1].usage is not None and parsed[-1].usage.completion_tokens == 15


def test_it_streams_tool_calls_as_argument_deltas():
    events = Replay("anthropic/stream_tool_use.sse").run(lambda: _stream(chat(stream=True, tools=[WEATHER_TOOL])))

    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in chunks(events)]
    calls: dict[int, dict[str, str]] = {}
    for chunk in parsed:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += (delta.function.name or "") if delta.function else ""
            call["arguments"] += (delta.function.arguments or "") if delta.function else ""
    assert calls == {
        0: {"id": "toolu_01T1x1FJ34qAmk2tNTrN7Up6", "name": "get_weather", "arguments": '{"city": "San Francisco"}'},
        1: {"id": "toolu_01SeCoNdCaLl", "name": "get_time", "arguments": '{"tz": "PST"}'},
    }
    assert [c.choices[0].finish_reason for c in parsed if c.choices][-1] == "tool_calls"
    assert [event.usage.completion_tokens for event in events if event.usage] == [89]


def test_it_raises_the_error_event_of_a_stream_that_fails_midway():
    with pytest.raises(ProviderError) as error:
        Replay("anthropic/stream_error.sse").run(lambda: _stream(chat(stream=True)))

    assert error.value.code == "overloaded_error" and not error.value.retryable


def test_it_says_a_stream_that_ended_without_message_stop_is_incomplete():
    with pytest.raises(ProviderError) as error:
        Replay("anthropic/stream_cut.sse").run(lambda: _stream(chat(stream=True)))

    assert error.value.code == "upstream_stream_incomplete" and error.value.retryable


async def _stream(request: ChatRequest) -> list[Any]:
    return await drain(await adapter().open_stream(request, upstream_model="claude"))


NATIVE_BODY = {"model": "claude", "max_tokens": 50, "top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024},
               "system": [{"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}],
               "messages": [{"role": "user", "content": "hi"}]}


def test_it_relays_a_native_messages_request_with_only_the_model_replaced():
    replay = Replay("anthropic/message_text.json")
    answer = replay.run(lambda: adapter().message(NATIVE_BODY, upstream_model="claude-sonnet-4-5"))

    assert replay.body == {**NATIVE_BODY, "model": "claude-sonnet-4-5"}
    assert answer.content == transcript("anthropic/message_text.json")  # byte for byte
    assert answer.usage == Usage(2219, 9, 2048, "provider", cache_creation_tokens=150)


def test_it_relays_a_native_stream_unchanged_and_bills_it_from_message_delta():
    replay = Replay("anthropic/stream_text.sse")

    async def relay() -> list[Any]:
        return await drain(await adapter().open_message_stream({**NATIVE_BODY, "stream": True}, upstream_model="c"))

    events = replay.run(relay)

    assert b"".join(event.frame for event in events) == transcript("anthropic/stream_text.sse")
    assert [event.usage for event in events if event.usage] == [Usage(1065, 15, 1000, "provider", 40)]
    assert "".join(event.text for event in events) == "Hello there, friend."
    # Routing fails over until the first content: message_start, ping and a text block's start are not yet.
    opening = [event.frame.split(b"\n")[0] for event in events if event.opening]
    assert opening == [b"event: message_start", b"event: content_block_start", b"event: ping"]


@pytest.mark.parametrize(("name", "code"), [("anthropic/stream_error.sse", "overloaded_error"),
                                            ("anthropic/stream_cut.sse", "upstream_stream_incomplete")])
def test_a_native_stream_that_fails_raises(name, code):
    async def relay() -> list[Any]:
        return await drain(await adapter().open_message_stream({**NATIVE_BODY, "stream": True}, upstream_model="c"))

    with pytest.raises(ProviderError) as error:
        Replay(name).run(relay)

    assert error.value.code == code
