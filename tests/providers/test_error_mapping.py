"""Every provider error class, from recorded error bodies: the client's OpenAI error and the retry decision."""

from __future__ import annotations

from typing import Any

import pytest

from apps.providers.adapters.anthropic import AnthropicAdapter
from apps.providers.adapters.azure import AzureOpenAIAdapter
from apps.providers.adapters.base import ProviderAdapter
from apps.providers.adapters.gemini import GeminiAdapter
from apps.providers.contracts import ChatRequest, ChatResponse
from apps.providers.errors import ProviderError
from tests.providers.replay import Replay, drain, upstream

ADAPTERS: dict[str, ProviderAdapter] = {
    "anthropic": AnthropicAdapter(upstream("anthropic", "https://api.anthropic.com/v1")),
    "gemini": GeminiAdapter(upstream("gemini", "https://generativelanguage.googleapis.com/v1beta")),
    "azure": AzureOpenAIAdapter(upstream("azure_openai", "https://r.openai.azure.com")),
}
CHAT = ChatRequest(model="m", body={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                   stream=False, include_usage=False)

# (transcript, upstream status) -> (client status, OpenAI error type, code, retryable)
TABLE = [
    ("anthropic/error_400.json", 400, (400, "invalid_request_error", "invalid_request_error", False)),
    ("anthropic/error_401.json", 401, (502, "upstream_error", "upstream_auth_failed", False)),
    ("anthropic/error_403.json", 403, (502, "upstream_error", "upstream_auth_failed", False)),
    ("anthropic/error_404.json", 404, (404, "invalid_request_error", "not_found_error", False)),
    ("anthropic/error_413.json", 413, (413, "invalid_request_error", "request_too_large", False)),
    ("anthropic/error_429.json", 429, (429, "rate_limit_error", "upstream_rate_limited", True)),
    ("anthropic/error_500.json", 500, (502, "upstream_error", "upstream_error", True)),
    ("anthropic/error_529.json", 529, (503, "service_unavailable", "upstream_overloaded", True)),
    ("gemini/error_400.json", 400, (400, "invalid_request_error", "INVALID_ARGUMENT", False)),
    ("gemini/error_400_api_key.json", 400, (502, "upstream_error", "upstream_auth_failed", False)),
    ("gemini/error_403.json", 403, (502, "upstream_error", "upstream_auth_failed", False)),
    ("gemini/error_404.json", 404, (404, "invalid_request_error", "NOT_FOUND", False)),
    ("gemini/error_429.json", 429, (429, "rate_limit_error", "upstream_rate_limited", True)),
    ("gemini/error_500.json", 500, (502, "upstream_error", "upstream_error", True)),
    ("gemini/error_503.json", 503, (502, "upstream_error", "upstream_error", True)),
    ("gemini/error_504.json", 504, (502, "upstream_error", "upstream_error", True)),
    ("azure/error_400.json", 400, (400, "invalid_request_error", "context_length_exceeded", False)),
    ("azure/error_401.json", 401, (502, "upstream_error", "upstream_auth_failed", False)),
    ("azure/error_404.json", 404, (404, "invalid_request_error", "DeploymentNotFound", False)),
    ("azure/error_429.json", 429, (429, "rate_limit_error", "upstream_rate_limited", True)),
    ("azure/error_500.json", 500, (502, "upstream_error", "upstream_error", True)),
]


@pytest.mark.parametrize(("name", "status", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_it_maps_each_provider_error_to_an_openai_error_and_a_retry_decision(name, status, expected):
    adapter = ADAPTERS[name.split("/")[0]]
    with pytest.raises(ProviderError) as caught:
        Replay(name, status=status).run(lambda: adapter.chat(CHAT, upstream_model="m"))

    error = caught.value
    assert (error.status, error.type, error.code, error.retryable) == expected
    assert error.upstream_status == status


@pytest.mark.parametrize("name", ["anthropic/error_400.json", "gemini/error_400.json", "azure/error_400.json"])
def test_it_passes_the_providers_own_message_through_on_client_errors(name):
    adapter = ADAPTERS[name.split("/")[0]]
    with pytest.raises(ProviderError) as caught:
        Replay(name, status=400).run(lambda: adapter.chat(CHAT, upstream_model="m"))

    assert caught.value.message and "Provider" not in caught.value.message


@pytest.mark.parametrize("kind", ["anthropic", "gemini", "azure"])
def test_it_carries_retry_after_on_rate_limits(kind):
    adapter = ADAPTERS[kind]
    with pytest.raises(ProviderError) as caught:
        Replay(f"{kind}/error_429.json", status=429, headers={"retry-after": "7"}).run(
            lambda: adapter.chat(CHAT, upstream_model="m"))

    assert caught.value.retry_after_s == 7.0 and caught.value.headers == {"Retry-After": "7"}


@pytest.mark.parametrize("kind", ["anthropic", "gemini", "azure"])
def test_it_maps_errors_before_a_stream_starts_the_same_way(kind):
    adapter = ADAPTERS[kind]
    streamed = ChatRequest(model="m", body={**CHAT.body, "stream": True}, stream=True, include_usage=False)
    with pytest.raises(ProviderError) as caught:
        Replay(f"{kind}/error_429.json", status=429).run(lambda: adapter.open_stream(streamed, upstream_model="m"))

    assert caught.value.status == 429 and caught.value.retryable


def test_kinds_without_embeddings_or_legacy_completions_fail_over_rather_than_fail():
    from apps.providers.contracts import CompletionRequest, EmbeddingsRequest

    anthropic = ADAPTERS["anthropic"]
    replay = Replay("anthropic/error_500.json")
    embeddings = EmbeddingsRequest(model="m", body={"model": "m", "input": "x"})
    legacy = CompletionRequest(model="m", body={"model": "m", "prompt": "x"}, stream=False, include_usage=False)
    for call in (lambda: anthropic.embeddings(embeddings, upstream_model="m"),
                 lambda: anthropic.completions(legacy, upstream_model="m"),
                 lambda: ADAPTERS["gemini"].completions(legacy, upstream_model="m")):
        with pytest.raises(ProviderError) as caught:
            replay.run(call)
        assert caught.value.retryable and caught.value.code == "unsupported_by_provider"
    assert replay.sent == []


# Answers that parse as JSON but hold a value of the wrong shape (a string for an object, a word for a count).
WRONG_SHAPES = ["gemini/generate_wrong_types.json", "anthropic/stream_wrong_types.sse", "gemini/stream_wrong_types.sse"]
# Answers whose only fault is their usage: the answer is the client's; the usage is never believed.
WRONG_USAGE = {"anthropic/message_wrong_types.json": (-1, 2), "azure/chat_wrong_types.json": (-1, 2),
               "azure/stream_wrong_types.sse": (9, 0)}


def answer_of(name: str) -> Any:
    adapter = ADAPTERS[name.split("/")[0]]
    streamed = ChatRequest(model="m", body={**CHAT.body, "stream": True}, stream=True, include_usage=False)

    async def call() -> object:
        if not name.endswith(".sse"):
            return await adapter.chat(CHAT, upstream_model="m")
        return await drain(await adapter.open_stream(streamed, upstream_model="m"))

    return Replay(name).run(call)


@pytest.mark.parametrize("name", WRONG_SHAPES)
def test_it_calls_an_answer_of_the_wrong_shape_malformed_so_another_deployment_is_tried(name):
    with pytest.raises(ProviderError) as caught:
        answer_of(name)

    assert (caught.value.code, caught.value.retryable) == ("upstream_malformed_response", True)


@pytest.mark.parametrize("name", WRONG_USAGE)
def test_it_passes_on_an_answer_whose_usage_is_garbage_with_counts_that_are_never_believed(name):
    answer = answer_of(name)

    usage = answer.usage if isinstance(answer, ChatResponse) else next(e.usage for e in answer if e.usage)
    # A count that is not a whole number arrives as -1: apps.proxy.usage_bounds never believes it.
    assert (usage.prompt_tokens, usage.completion_tokens) == WRONG_USAGE[name]
