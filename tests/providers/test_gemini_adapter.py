"""The Gemini adapter against recorded generateContent responses: what it sends, what it makes of the answers."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from apps.providers.adapters.gemini import GeminiAdapter
from apps.providers.contracts import ChatRequest, EmbeddingsRequest, Usage
from apps.providers.errors import ProviderError
from tests.providers.replay import Replay, chunks, drain, upstream
from tests.providers.test_anthropic_adapter import CONVERSATION, WEATHER_SCHEMA, WEATHER_TOOL

BASE = "https://generativelanguage.googleapis.com/v1beta"


def adapter() -> GeminiAdapter:
    return GeminiAdapter(upstream("gemini", BASE))


def chat(stream: bool = False, **params: Any) -> ChatRequest:
    body = {"model": "gemini", "messages": CONVERSATION, **params}
    return ChatRequest(model="gemini", body=body, stream=stream, include_usage=False)


def test_it_translates_the_whole_conversation_into_a_generate_content_request():
    replay = Replay("gemini/generate_text.json")
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    replay.run(lambda: adapter().chat(
        chat(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}},
             stop=["END"], temperature=0.2, top_p=0.9, max_tokens=300, n=2, seed=7,
             response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}),
        upstream_model="gemini-2.5-flash"))

    assert str(replay.request.url) == f"{BASE}/models/gemini-2.5-flash:generateContent"
    assert replay.request.headers["x-goog-api-key"] == "sk-recorded"
    assert "authorization" not in replay.request.headers
    assert replay.body == {
        "systemInstruction": {"parts": [{"text": "You are terse.\n\nAnswer in English."}]},
        "contents": [
            {"role": "user", "parts": [
                {"text": "What is the weather where these photos were taken?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/rome.jpg"}},
            ]},
            {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            ]},
            {"role": "user", "parts": [  # results are named after the calls they answer
                {"functionResponse": {"name": "get_weather", "response": {"content": "18C and sunny"}}},
                {"functionResponse": {"name": "get_weather", "response": {"content": "24C and cloudy"}}},
            ]},
        ],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather in a city",
                                             "parametersJsonSchema": WEATHER_SCHEMA}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {"temperature": 0.2, "topP": 0.9, "candidateCount": 2, "seed": 7, "maxOutputTokens": 300,
                             "stopSequences": ["END"], "responseMimeType": "application/json",
                             "responseJsonSchema": schema},
    }


@pytest.mark.parametrize(("tool_choice", "mode"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")])
def test_it_maps_each_tool_choice_mode(tool_choice, mode):
    replay = Replay("gemini/generate_text.json")
    replay.run(lambda: adapter().chat(chat(tools=[WEATHER_TOOL], tool_choice=tool_choice), upstream_model="g"))

    assert replay.body["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_it_answers_with_an_openai_completion_whose_prompt_includes_cached_tokens():
    answer = Replay("gemini/generate_text.json").run(lambda: adapter().chat(chat(), upstream_model="g"))

    completion = ChatCompletion.model_validate_json(answer.content)
    assert completion.choices[0].message.content == "Paris is the capital of France."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gemini-2.5-flash"
    # thinking tokens are output tokens, billed as Google bills them
    assert answer.usage == Usage(prompt_tokens=1210, completion_tokens=8 + 12, cached_tokens=1024, source="provider")
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 1024


def test_it_turns_function_calls_into_numbered_tool_calls():
    answer = Replay("gemini/generate_function_call.json").run(lambda: adapter().chat(chat(), upstream_model="g"))

    choice = ChatCompletion.model_validate_json(answer.content).choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = [(c.id, c.function.name, orjson.loads(c.function.arguments))  # type: ignore[union-attr]
             for c in choice.message.tool_calls or []]
    assert calls == [("call_0", "get_weather", {"city": "Paris"}), ("call_1", "get_weather", {"city": "Rome"})]


@pytest.mark.parametrize(("name", "finish_reason"), [
    ("gemini/generate_max_tokens.json", "length"), ("gemini/generate_blocked.json", "content_filter"),
])
def test_it_maps_finish_reasons(name, finish_reason):
    answer = Replay(name).run(lambda: adapter().chat(chat(), upstream_model="g"))

    assert ChatCompletion.model_validate_json(answer.content).choices[0].finish_reason == finish_reason


def test_it_streams_text_from_the_sse_endpoint_with_usage_at_the_end():
    replay = Replay("gemini/stream_text.sse")
    events = replay.run(lambda: _stream(chat(stream=True)))

    assert str(replay.request.url) == f"{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in chunks(events)]
    assert parsed[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in parsed if c.choices) == "Hello there, friend."
    assert [c.choices[0].finish_reason for c in parsed if c.choices][-1] == "stop"
    assert [event.usage for event in events if event.usage] == [
        Usage(prompt_tokens=9, completion_tokens=5, cached_tokens=4, source="provider")]
    assert events[-1].frame == b"data: [DONE]\n\n"


def test_it_streams_function_calls_as_tool_call_deltas():
    events = Replay("gemini/stream_function_call.sse").run(lambda: _stream(chat(stream=True)))

    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in chunks(events)]
    starts = [(d.index, d.id, d.function.name) for c in parsed if c.choices  # type: ignore[union-attr]
              for d in c.choices[0].delta.tool_calls or [] if d.id]
    assert starts == [(0, "call_0", "get_weather"), (1, "call_1", "get_time")]
    assert [c.choices[0].finish_reason for c in parsed if c.choices][-1] == "tool_calls"


def test_it_raises_the_error_a_stream_reports_midway():
    with pytest.raises(ProviderError) as error:
        Replay("gemini/stream_error.sse").run(lambda: _stream(chat(stream=True)))

    assert error.value.code == "UNAVAILABLE" and "overloaded" in error.value.message and not error.value.retryable


def test_it_says_a_stream_that_ended_without_a_finish_reason_is_incomplete():
    with pytest.raises(ProviderError) as error:
        Replay("gemini/stream_cut.sse").run(lambda: _stream(chat(stream=True)))

    assert error.value.code == "upstream_stream_incomplete" and error.value.retryable


def test_it_embeds_with_batch_embed_contents_and_answers_in_openais_shape():
    replay = Replay("gemini/embed.json")
    request = EmbeddingsRequest(model="e", body={"model": "e", "input": ["hello world", "bye"], "dimensions": 3})
    answer = replay.run(lambda: adapter().embeddings(request, upstream_model="gemini-embedding-001"))

    assert str(replay.request.url) == f"{BASE}/models/gemini-embedding-001:batchEmbedContents"
    assert replay.body == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello world"}]},
         "outputDimensionality": 3},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "bye"}]}, "outputDimensionality": 3},
    ]}
    response = CreateEmbeddingResponse.model_validate_json(answer.content)
    assert [item.embedding for item in response.data] == [[0.013, -0.0081, 0.0442], [-0.021, 0.0095, 0.0017]]
    assert answer.usage.source == "estimated" and answer.usage.prompt_tokens == response.usage.prompt_tokens > 0


def test_it_encodes_embeddings_as_base64_floats_when_asked():
    request = EmbeddingsRequest(model="e", body={"model": "e", "input": "hi", "encoding_format": "base64"})
    answer = Replay("gemini/embed.json").run(lambda: adapter().embeddings(request, upstream_model="g"))

    first = orjson.loads(answer.content)["data"][0]["embedding"]
    assert struct.unpack("<3f", base64.b64decode(first)) == pytest.approx((0.013, -0.0081, 0.0442))


async def _stream(request: ChatRequest) -> list[Any]:
    return await drain(await adapter().open_stream(request, upstream_model="gemini-2.5-flash"))
