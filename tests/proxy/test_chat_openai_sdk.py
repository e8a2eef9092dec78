"""The official openai SDK, sync and async, streaming and not, against a live gateway and the fake provider."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall, ChatCompletionMessageParam

from tests.harness.served import Served, ledger_row

pytestmark = pytest.mark.usefixtures("live_db")

# Every parameter a client may send that the gateway must leave alone (a subset of OpenAI's; the
# point is that the gateway knows none of them).
CLIENT_PARAMETERS: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [
            {"type": "text", "text": "what is in this picture"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        ]},
    ],
    "tools": [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }}],
    "tool_choice": "auto",
    "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
    "n": 2,
    "seed": 42,
    "stop": ["\n\n", "END"],
    "logprobs": True,
    "top_logprobs": 3,
    "temperature": 0.25,
    "max_completion_tokens": 50,
    "user": "end-user-7",
    "metadata": {"team": "search"},
}


def test_it_completes_a_chat_and_bills_it_exactly(served: Served):
    raw = served.client().chat.completions.with_raw_response.create(
        model=served.model, messages=[{"role": "user", "content": "hello there friend"}]
    )
    completion = raw.parse()
    usage, content = completion.usage, completion.choices[0].message.content
    assert usage is not None and content is not None

    row = ledger_row(raw.headers["x-request-id"])
    expected = (Decimal(usage.prompt_tokens) * Decimal("0.15")
                + Decimal(usage.completion_tokens) * Decimal("0.60")) / 1_000_000
    assert content.startswith("Mock reply to: hello there friend")
    assert (row.prompt_tokens, row.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert row.cost_usd == expected
    assert raw.headers["x-edge-cost-usd"] == f"{expected:.10f}"
    assert row.status == "ok" and row.usage_source == "provider" and row.public_model == served.model


def test_it_passes_every_parameter_through_and_rewrites_only_the_model(served: Served, fake):
    completion = served.client().chat.completions.create(model=served.model, **CLIENT_PARAMETERS)

    received = fake.requests()[-1]["body"]
    assert received == {**CLIENT_PARAMETERS, "model": served.upstream_model}
    assert len(completion.choices) == 2
    assert completion.model == served.upstream_model  # the provider's answer is relayed as it came


def test_it_passes_every_parameter_through_on_a_stream_and_always_asks_for_usage(served: Served, fake):
    chunks = list(served.client().chat.completions.create(model=served.model, stream=True, **CLIENT_PARAMETERS))

    received = fake.requests()[-1]["body"]
    assert received == {
        **CLIENT_PARAMETERS, "model": served.upstream_model, "stream": True, "stream_options": {"include_usage": True},
    }
    assert {choice.index for chunk in chunks for choice in chunk.choices} == {0, 1}


def test_it_sends_the_providers_key_upstream_never_the_clients(served: Served, fake):
    served.client().chat.completions.create(model=served.model, messages=[{"role": "user", "content": "hi"}])

    headers = fake.requests()[-1]["headers"]
    assert headers["authorization"] == "Bearer sk-upstream"
    assert served.raw_key not in str(headers)


def test_it_streams_the_same_reply_it_would_send_whole(served: Served):
    client = served.client()
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "tell me about streams"}]
    whole = client.chat.completions.create(model=served.model, messages=messages)
    chunks = list(client.chat.completions.create(model=served.model, messages=messages, stream=True))

    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert streamed == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_it_hides_the_usage_chunk_from_clients_that_did_not_ask(served: Served):
    chunks = list(served.client().chat.completions.create(
        model=served.model, messages=[{"role": "user", "content": "hi"}], stream=True
    ))

    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


def test_it_sends_the_usage_chunk_to_clients_that_asked(served: Served):
    raw = served.client().chat.completions.with_raw_response.create(
        model=served.model, messages=[{"role": "user", "content": "count my tokens please"}],
        stream=True, stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())

    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.prompt_tokens == 4 + 3  # the fake counts words, plus 3 per message
    row = ledger_row(raw.headers["x-request-id"])
    usage = usage_chunk.usage
    assert (row.prompt_tokens, row.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)


def test_it_relays_the_providers_tool_calls(served: Served, fake):
    fake.set_rule(served.upstream_model, tool_call=True)
    tools = CLIENT_PARAMETERS["tools"]

    completion = served.client().chat.completions.create(
        model=served.model, messages=[{"role": "user", "content": "weather in Oslo?"}], tools=tools
    )

    tool_calls = completion.choices[0].message.tool_calls
    assert tool_calls is not None
    call = tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and "city" in call.function.arguments


def test_it_serves_the_async_sdk_streaming_and_not(served: Served):
    async def chat() -> tuple[str, str]:
        async with served.async_client() as client:
            messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "async hello"}]
            whole = await client.chat.completions.create(model=served.model, messages=messages)
            stream = await client.chat.completions.create(model=served.model, messages=messages, stream=True)
            streamed = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
            return whole.choices[0].message.content or "", streamed

    whole, streamed = asyncio.run(chat())

    assert whole.startswith("Mock reply to: async hello")
    assert streamed == whole


def test_it_raises_the_sdks_own_errors_for_the_async_client(served: Served):
    async def chat_with_unknown_model() -> None:
        async with served.async_client() as client:
            await client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])

    with pytest.raises(openai.NotFoundError) as raised:
        asyncio.run(chat_with_unknown_model())

    assert raised.value.code == "model_not_found"
