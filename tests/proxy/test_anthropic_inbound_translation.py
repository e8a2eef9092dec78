"""/v1/messages' translations on their own: Anthropic request → the gateway's chat request, and back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from apps.providers.contracts import ChatResponse, ChatStream, StreamEvent, Usage
from apps.providers.errors import ProviderError
from apps.proxy.anthropic_inbound.endpoint import translated_message
from apps.proxy.anthropic_inbound.request import chat_request
from apps.proxy.anthropic_inbound.response import message_body
from apps.proxy.anthropic_inbound.stream import anthropic_stream
from apps.proxy.errors import InvalidRequest
from tests.providers.replay import drain

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


def test_it_translates_an_anthropic_request_into_an_openai_chat_request():
    chat = chat_request({
        "model": "m", "max_tokens": 50, "stream": True, "temperature": 0.3, "top_p": 0.8, "top_k": 5,
        "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Where is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]},
                {"type": "text", "text": "thanks"},
            ]},
        ],
    })

    assert (chat.model, chat.stream, chat.include_usage) == ("m", True, True)
    assert chat.body == {
        "model": "m", "max_tokens": 50, "temperature": 0.3, "top_p": 0.8, "stop": ["END"], "user": "u1",
        "stream": True, "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "Be brief.\n\nBe kind."},
            {"role": "user", "content": [
                {"type": "text", "text": "Where is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            ]},
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
            {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA,
                                                    "description": "Weather"}}],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}},
    }


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, {"tool_choice": "auto"}),
    ({"type": "none"}, {"tool_choice": "none"}),
    ({"type": "tool", "name": "f"}, {"tool_choice": {"type": "function", "function": {"name": "f"}}}),
])
def test_it_maps_each_tool_choice(choice, expected):
    body = chat_request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                         "tool_choice": choice}).body

    assert {key: body[key] for key in expected} == expected


def test_it_refuses_a_request_without_max_tokens_naming_it():
    with pytest.raises(InvalidRequest) as error:
        chat_request({"model": "m", "messages": [{"role": "user", "content": "x"}]})

    assert error.value.param == "max_tokens"


@pytest.mark.parametrize(("finish_reason", "stop_reason"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal"),
])
def test_it_answers_in_anthropics_shape_with_cache_tokens_apart(finish_reason, stop_reason):
    message = {"role": "assistant", "content": "Hi", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]}
    completion = orjson.dumps({"id": "chatcmpl-1", "model": "gpt",
                               "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}]})
    usage = Usage(prompt_tokens=100, completion_tokens=7, cached_tokens=60, source="provider", cache_creation_tokens=30)

    answer = orjson.loads(message_body(completion, usage))

    assert answer["type"] == "message" and answer["id"] == "msg_chatcmpl-1" and answer["stop_reason"] == stop_reason
    assert answer["content"] == [{"type": "text", "text": "Hi"},
                                  {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}}]
    assert answer["usage"] == {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 60,
                                "cache_creation_input_tokens": 30}


ODD_CHUNK = b'{"id": "c1", "model": "gpt", "choices": ["not a choice"]}'


def test_an_upstream_answer_it_cannot_translate_is_the_providers_malformed_response():
    chat = chat_request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})

    with pytest.raises(ProviderError) as error:
        translated_message(chat, ChatResponse(ODD_CHUNK, Usage(1, 1, source="provider")), "p")

    assert (error.value.code, error.value.retryable) == ("upstream_malformed_response", True)


def test_an_upstream_chunk_it_cannot_translate_is_the_providers_malformed_response():
    async def events() -> AsyncIterator[list[StreamEvent]]:
        yield [StreamEvent(frame=b"data: " + ODD_CHUNK + b"\n\n")]

    async def close() -> None:
        return None

    with pytest.raises(ProviderError) as error:
        asyncio.run(drain(anthropic_stream(ChatStream(events=events(), close=close), "p")))

    assert (error.value.code, error.value.retryable) == ("upstream_malformed_response", True)
