"""Streams and the cache: a stream answered from a cached answer (replayed as SSE, read with the
official openai SDK), a completed stream stored, and a partial one never."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from tests.cache.conftest import upstream_calls
from tests.harness.served import Served, ledger_row

pytestmark = pytest.mark.usefixtures("live_db")

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "tell me about caching please"}]
WEATHER_TOOL: ChatCompletionFunctionToolParam = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}


def test_a_streamed_request_is_answered_from_the_cache_and_parses_with_the_openai_sdk(cached: Served, fake):
    client = cached.client()
    completion = client.chat.completions.create(model=cached.model, messages=MESSAGES)

    raw = client.chat.completions.with_raw_response.create(
        model=cached.model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())

    assert raw.headers["x-edge-cache"] == "hit-l1"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == completion.choices[0].message.content
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].usage == completion.usage and not chunks[-1].choices
    assert upstream_calls(fake, cached) == 1
    row = ledger_row(raw.headers["x-request-id"])
    assert (row.stream, row.cache_status, row.cost_usd) == (True, "hit-l1", Decimal(0)) and row.ttft_ms is not None


def test_a_replayed_stream_sends_the_usage_chunk_only_when_asked(cached: Served):
    client = cached.client()
    client.chat.completions.create(model=cached.model, messages=MESSAGES)

    chunks = list(client.chat.completions.create(model=cached.model, messages=MESSAGES, stream=True))

    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)


def test_a_completed_stream_is_cached_and_answers_a_plain_request(cached: Served, fake):
    client = cached.client()
    streamed = list(client.chat.completions.create(
        model=cached.model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ))

    raw = client.chat.completions.with_raw_response.create(model=cached.model, messages=MESSAGES)
    completion = raw.parse()

    assert raw.headers["x-edge-cache"] == "hit-l1"
    assert completion.choices[0].message.content == "".join(
        chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage == streamed[-1].usage
    assert completion.id == streamed[0].id
    assert upstream_calls(fake, cached) == 1


def test_a_streamed_tool_call_is_assembled_and_replayed_whole(cached: Served, fake):
    fake.set_rule(cached.upstream_model, tool_call=True)
    client = cached.client()
    list(client.chat.completions.create(model=cached.model, messages=MESSAGES, tools=[WEATHER_TOOL], stream=True))

    completion = client.chat.completions.create(model=cached.model, messages=MESSAGES, tools=[WEATHER_TOOL])
    replayed = list(client.chat.completions.create(
        model=cached.model, messages=MESSAGES, tools=[WEATHER_TOOL], stream=True
    ))

    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments), dict)  # type: ignore[union-attr]
    deltas = [tool for chunk in replayed for tool in (chunk.choices[0].delta.tool_calls or [])]
    assert [(delta.id, delta.function.name, delta.function.arguments) for delta in deltas] == [  # type: ignore[union-attr]
        (call.id, "get_weather", call.function.arguments)  # type: ignore[union-attr]
    ]
    assert upstream_calls(fake, cached) == 1


def test_a_stream_cut_short_is_never_cached(cached: Served, fake):
    fake.set_rule(cached.upstream_model, cut_stream_after=3)
    cut = cached.post(cached.chat_body(stream=True))
    fake.set_rule(cached.upstream_model)

    after = cached.post(cached.chat_body())

    assert b"data: [DONE]" not in cut.content and b'"error"' in cut.content
    assert after.headers["x-edge-cache"] == "miss"
    assert upstream_calls(fake, cached) == 2


def test_a_stream_the_client_left_is_never_cached(cached: Served, fake):
    fake.set_rule(cached.upstream_model, chunk_delay_ms=100)
    stream = cached.client().chat.completions.create(model=cached.model, messages=MESSAGES, stream=True)
    next(iter(stream))  # the first chunk only
    stream.close()
    fake.set_rule(cached.upstream_model)

    after = cached.post({"model": cached.model, "messages": MESSAGES})

    assert after.headers["x-edge-cache"] == "miss"
    assert upstream_calls(fake, cached) == 2
