"""The Anthropic adapter takes a base URL written either way, and relays token counting."""

from __future__ import annotations

import pytest

from apps.providers.adapters.anthropic import AnthropicAdapter
from apps.providers.contracts import ChatRequest
from apps.providers.errors import ProviderError
from tests.providers.replay import Replay, upstream

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.mark.parametrize(("base_url", "messages_url"), [
    ("https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"),
    ("https://api.anthropic.com/v1/", "https://api.anthropic.com/v1/messages"),
    ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),  # as Anthropic's SDK writes it
    ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
    ("https://proxy.example/anthropic", "https://proxy.example/anthropic/v1/messages"),
])
def test_it_reaches_the_messages_api_whichever_way_the_base_url_is_written(base_url: str, messages_url: str):
    adapter = AnthropicAdapter(upstream("anthropic", base_url))
    replay = Replay("anthropic/message_text.json")

    replay.run(lambda: adapter.chat(ChatRequest(model="c", body={"messages": HELLO}, stream=False,
                                                include_usage=False), upstream_model="claude"))
    replay.run(lambda: adapter.message({"model": "c", "max_tokens": 5, "messages": HELLO}, upstream_model="claude"))

    assert [str(sent.url) for sent in replay.sent] == [messages_url, messages_url]


def test_it_relays_count_tokens_with_the_upstream_model_and_the_beta_header():
    adapter = AnthropicAdapter(upstream("anthropic", "https://api.anthropic.com"))
    replay = Replay("anthropic/count_tokens.json")
    body = {"model": "public-name", "messages": HELLO, "tools": [{"name": "f", "input_schema": {"type": "object"}}]}

    counted = replay.run(lambda: adapter.count_tokens(body, upstream_model="claude-x", beta="files-2025"))

    assert counted == b'{"input_tokens":2095}'
    assert str(replay.request.url) == "https://api.anthropic.com/v1/messages/count_tokens"
    assert replay.body == {**body, "model": "claude-x"}
    assert replay.request.headers["anthropic-beta"] == "files-2025"
    assert replay.request.headers["x-api-key"] == "sk-recorded"


def test_a_count_without_a_whole_number_is_a_malformed_answer_another_deployment_may_fix():
    adapter = AnthropicAdapter(upstream("anthropic", "https://api.anthropic.com/v1"))

    with pytest.raises(ProviderError) as raised:
        Replay("anthropic/message_text.json").run(
            lambda: adapter.count_tokens({"model": "c", "messages": HELLO}, upstream_model="c"))

    assert raised.value.code == "upstream_malformed_response" and raised.value.retryable

