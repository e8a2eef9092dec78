"""The Azure OpenAI adapter: deployment URLs, api-version, the api-key header, Azure's extra fields."""

from __future__ import annotations

from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from apps.providers.adapters.azure import AzureOpenAIAdapter
from apps.providers.contracts import ChatRequest, EmbeddingsRequest, StreamEvent, Usage
from tests.providers.replay import Replay, chunks, drain, upstream

RESOURCE = "https://my-resource.openai.azure.com"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Capital of France?"}], "temperature": 0}


def adapter(api_version: str = "") -> AzureOpenAIAdapter:
    return AzureOpenAIAdapter(upstream("azure_openai", RESOURCE, api_version=api_version))


def test_it_calls_the_deployment_url_with_the_api_key_header_and_the_body_untouched():
    replay = Replay("azure/chat.json")
    request = ChatRequest(model="gpt-4o", body=BODY, stream=False, include_usage=False)
    answer = replay.run(lambda: adapter("2025-01-01-preview").chat(request, upstream_model="prod-gpt4o"))

    assert str(replay.request.url) == (
        f"{RESOURCE}/openai/deployments/prod-gpt4o/chat/completions?api-version=2025-01-01-preview")
    assert replay.request.headers["api-key"] == "sk-recorded"
    assert "authorization" not in replay.request.headers
    assert replay.body == {**BODY, "model": "prod-gpt4o"}
    assert ChatCompletion.model_validate_json(answer.content).choices[0].message.content == "Paris."
    assert answer.usage == Usage(prompt_tokens=1500, completion_tokens=2, cached_tokens=1280, source="provider")


def test_it_uses_the_current_ga_api_version_when_the_provider_sets_none():
    replay = Replay("azure/chat.json")
    request = ChatRequest(model="gpt-4o", body=BODY, stream=False, include_usage=False)
    replay.run(lambda: adapter().chat(request, upstream_model="d"))

    assert replay.request.url.params["api-version"] == AzureOpenAIAdapter.default_api_version


def test_it_streams_through_azures_prompt_filter_chunk_and_bills_from_the_usage_chunk():
    replay = Replay("azure/stream.sse")
    request = ChatRequest(model="gpt-4o", body={**BODY, "stream": True}, stream=True, include_usage=False)

    async def stream() -> list[StreamEvent]:
        return await drain(await adapter().open_stream(request, upstream_model="d"))

    events = replay.run(stream)

    assert replay.body["stream_options"] == {"include_usage": True}
    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in chunks(events)]
    assert "".join(c.choices[0].delta.content or "" for c in parsed if c.choices) == "Paris."
    assert [e.usage for e in events if e.usage] == [Usage(1500, 2, 1280, "provider")]


def test_it_embeds_through_the_deployments_embeddings_url():
    replay = Replay("azure/embeddings.json")
    request = EmbeddingsRequest(model="e", body={"model": "e", "input": "hello there friend"})
    answer = replay.run(lambda: adapter().embeddings(request, upstream_model="embed-small"))

    assert replay.request.url.path == "/openai/deployments/embed-small/embeddings"
    assert CreateEmbeddingResponse.model_validate_json(answer.content).data[0].embedding == [0.0023, -0.0093, 0.0158]
    assert answer.usage == Usage(prompt_tokens=4, source="provider")
