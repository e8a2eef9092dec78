"""The fake upstream speaks OpenAI's and Anthropic's wire formats well enough for their SDKs."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from apps.providers.fake_upstream import BackgroundFakeUpstream

REPO_ROOT = Path(__file__).resolve().parents[2]
# Not a real model name: the SDK warns about real ones as they near retirement.
CLAUDE = "claude-test"
HELLO: Any = [{"role": "user", "content": "Tell me a short story about a brave little fox"}]
# 10 words + 3 for the one message, per the documented counting rule.
HELLO_PROMPT_TOKENS = 13
# "Mock reply to:" + the first 8 words, padded to the default 12 words.
HELLO_REPLY = "Mock reply to: Tell me a short story about a brave lorem"


def sse_data(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


def test_it_answers_chat_with_deterministic_text_and_usage(
    openai_client: openai.OpenAI,
) -> None:
    completion = openai_client.chat.completions.create(model="gpt-4o", messages=HELLO)

    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o"
    choice = completion.choices[0]
    assert choice.message.content == HELLO_REPLY
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == HELLO_PROMPT_TOKENS
    assert completion.usage.completion_tokens == 12
    assert completion.usage.total_tokens == HELLO_PROMPT_TOKENS + 12


def test_it_counts_content_parts_and_every_message(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(model="gpt-4o", messages=[
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "one two"},
                                     {"type": "text", "text": "three"}]},
    ])

    assert completion.usage is not None
    assert completion.usage.prompt_tokens == (2 + 3) + (3 + 3)
    assert completion.choices[0].message.content == (
        "Mock reply to: one two three lorem ipsum dolor sit amet consectetur")


def test_it_returns_n_choices_and_bills_each(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(model="gpt-4o", messages=HELLO, n=3)

    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 36


def test_it_stops_at_max_tokens_with_finish_reason_length(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="gpt-4o", messages=HELLO, max_completion_tokens=4)

    assert completion.choices[0].message.content == "Mock reply to: Tell"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4


def test_it_streams_chat_without_usage_unless_asked(openai_client: openai.OpenAI) -> None:
    chunks = list(openai_client.chat.completions.create(
        model="gpt-4o", messages=HELLO, stream=True))

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == HELLO_REPLY
    assert len(chunks) == 1 + 12 + 1  # role, one delta per word, finish
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_it_streams_a_usage_chunk_when_include_usage_is_asked(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={
        "model": "gpt-4o", "messages": HELLO, "stream": True,
        "stream_options": {"include_usage": True}})

    events = sse_data(response.text)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == HELLO_PROMPT_TOKENS
    assert chunks[-1]["usage"]["completion_tokens"] == 12


def test_it_streams_usage_the_openai_sdk_can_read(openai_client: openai.OpenAI) -> None:
    chunks = list(openai_client.chat.completions.create(
        model="gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True}))

    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == HELLO_PROMPT_TOKENS + 12


def test_it_streams_the_requested_number_of_chunks(
    fake: BackgroundFakeUpstream, openai_client: openai.OpenAI,
) -> None:
    fake.set_rule("gpt-4o", stream_chunks=3)

    chunks = list(openai_client.chat.completions.create(
        model="gpt-4o", messages=HELLO, stream=True))

    deltas = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(deltas) == 3
    assert "".join(d or "" for d in deltas).split() == (
        HELLO_REPLY.split())


def test_it_calls_a_tool_when_the_rule_says_so(
    fake: BackgroundFakeUpstream, openai_client: openai.OpenAI,
) -> None:
    fake.set_rule("gpt-4o", tool_call=True)
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]

    completion = openai_client.chat.completions.create(
        model="gpt-4o", messages=HELLO, tools=tools)

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "mock"}


def test_it_reports_cached_tokens_but_never_more_than_the_prompt(
    fake: BackgroundFakeUpstream, openai_client: openai.OpenAI,
) -> None:
    fake.set_rule("gpt-4o", cached_tokens=10)
    fake.set_rule("gpt-4o-mini", cached_tokens=1000)

    some = openai_client.chat.completions.create(model="gpt-4o", messages=HELLO)
    capped = openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)

    assert some.usage and some.usage.prompt_tokens_details
    assert some.usage.prompt_tokens_details.cached_tokens == 10
    assert capped.usage and capped.usage.prompt_tokens_details
    assert capped.usage.prompt_tokens_details.cached_tokens == HELLO_PROMPT_TOKENS


def test_it_serves_legacy_completions(openai_client: openai.OpenAI) -> None:
    completion = openai_client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say hello to the world")

    assert completion.object == "text_completion"
    assert completion.choices[0].text.startswith("Mock reply to: Say hello to the world")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 5
    assert completion.usage.completion_tokens == 12


def test_it_streams_legacy_completions(openai_client: openai.OpenAI) -> None:
    chunks = list(openai_client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say hello", stream=True,
        stream_options={"include_usage": True}))

    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "Mock reply to: Say hello lorem ipsum dolor sit amet consectetur adipiscing"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 2


def test_it_embeds_the_same_way_as_floats_and_as_base64(openai_client: openai.OpenAI) -> None:
    # The SDK asks for base64 by default and decodes it; float must agree exactly.
    decoded = openai_client.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "bye"])
    floats = openai_client.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "bye"], encoding_format="float")

    assert [d.embedding for d in decoded.data] == [d.embedding for d in floats.data]
    assert len(floats.data[0].embedding) == 16
    assert floats.data[0].embedding != floats.data[1].embedding
    assert floats.usage.prompt_tokens == 3


def test_it_lists_models(openai_client: openai.OpenAI) -> None:
    assert "gpt-4o" in [model.id for model in openai_client.models.list()]


def test_it_answers_anthropic_messages(anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=100, system="You are terse.", messages=HELLO)

    assert message.id.startswith("msg_")
    assert message.content[0].type == "text"
    assert message.content[0].text == HELLO_REPLY
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == HELLO_PROMPT_TOKENS + 3  # the system prompt's words
    assert message.usage.output_tokens == 12


def test_it_stops_anthropic_replies_at_max_tokens(anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=2, messages=HELLO)

    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


def test_it_streams_anthropic_events_in_the_real_order(http: httpx.Client) -> None:
    response = http.post("/v1/messages", json={
        "model": CLAUDE, "max_tokens": 100, "stream": True, "messages": HELLO,
    }, headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})

    names = [line[len("event: "):] for line in response.text.splitlines()
             if line.startswith("event: ")]
    assert names == ["message_start", "content_block_start", "ping",
                     *["content_block_delta"] * 12,
                     "content_block_stop", "message_delta", "message_stop"]


def test_it_streams_anthropic_messages_the_sdk_can_assemble(
    anthropic_client: anthropic.Anthropic,
) -> None:
    with anthropic_client.messages.stream(
        model=CLAUDE, max_tokens=100, messages=HELLO,
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == HELLO_REPLY
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 12


def test_it_reports_anthropic_cache_reads_apart_from_input(
    fake: BackgroundFakeUpstream, anthropic_client: anthropic.Anthropic,
) -> None:
    fake.set_rule(CLAUDE, cached_tokens=5)

    message = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=100, messages=HELLO)

    assert message.usage.cache_read_input_tokens == 5
    assert message.usage.input_tokens == HELLO_PROMPT_TOKENS - 5


def test_it_uses_tools_the_anthropic_way(
    fake: BackgroundFakeUpstream, anthropic_client: anthropic.Anthropic,
) -> None:
    fake.set_rule("*", tool_call=True)

    message = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=100, messages=HELLO,
        tools=[{"name": "lookup", "input_schema": {
            "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}])

    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use"
    assert message.content[0].input == {"n": 1}


def test_it_records_what_it_was_sent(
    fake: BackgroundFakeUpstream, http: httpx.Client, openai_client: openai.OpenAI,
) -> None:
    openai_client.chat.completions.create(
        model="gpt-4o", messages=HELLO, extra_headers={"X-Edge-Trace": "abc"})
    http.get("/_fake/stats")

    logged = http.get("/_fake/requests", params={"limit": 1}).json()
    assert len(logged) == 1
    assert logged[0]["method"] == "POST"
    assert logged[0]["path"] == "/v1/chat/completions"
    assert logged[0]["headers"]["authorization"] == "Bearer sk-test"
    assert logged[0]["headers"]["x-edge-trace"] == "abc"
    assert logged[0]["body"] == {"model": "gpt-4o", "messages": HELLO}
    assert http.get("/_fake/stats").json() == {
        "requests": 1, "by_model": {"gpt-4o": 1}, "by_path": {"/v1/chat/completions": 1},
        "peak_in_flight": {"gpt-4o": 1}}


def test_it_resets_its_counters_on_request(http: httpx.Client, fake: BackgroundFakeUpstream,
                                           openai_client: openai.OpenAI) -> None:
    openai_client.models.list()

    http.delete("/_fake/stats")

    assert fake.stats() == {"requests": 0, "by_model": {}, "by_path": {}, "peak_in_flight": {}}


def test_it_rejects_an_unknown_knob_by_name(http: httpx.Client) -> None:
    response = http.post("/_fake/rules", json={"model": "gpt-4o", "latency": 5})

    assert response.status_code == 400
    assert "unknown knob 'latency'" in response.json()["error"]["message"]


def test_it_reads_chunked_request_bodies(http: httpx.Client) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"model": "gpt-4o", '
        yield b'"messages": [{"role": "user", "content": "hi"}]}'

    response = http.post("/v1/chat/completions", content=body(),
                         headers={"content-type": "application/json"})

    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens"] == 4


@pytest.mark.parametrize("command", [
    ["-m", "apps.providers.fake_upstream"],
    ["manage.py", "edge_fake_upstream"],
], ids=["python -m", "manage.py"])
def test_it_runs_from_the_command_line_and_announces_its_address(command: list[str]) -> None:
    process = subprocess.Popen(
        [sys.executable, *command, "--port", "0", "--reply-words", "3"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("fake upstream listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        reply = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": HELLO})
        assert reply.json()["choices"][0]["message"]["content"] == "Mock reply to:"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
