"""Each fault knob of the fake upstream breaks things the way its name promises."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from apps.providers.fake_upstream import BackgroundFakeUpstream

HELLO: Any = [{"role": "user", "content": "hello there"}]
CHAT = {"model": "gpt-4o", "messages": HELLO}
STREAM = {**CHAT, "stream": True}


def chat_statuses(http: httpx.Client, count: int) -> list[int]:
    return [http.post("/v1/chat/completions", json=CHAT).status_code for _ in range(count)]


def test_it_fails_with_the_status_openai_clients_expect(
    fake: BackgroundFakeUpstream, openai_client: openai.OpenAI,
) -> None:
    fake.set_rule("gpt-4o", fail_status=429, retry_after=7)

    with pytest.raises(openai.RateLimitError) as raised:
        openai_client.chat.completions.create(model="gpt-4o", messages=HELLO)

    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.code == "rate_limit_exceeded"
    assert raised.value.type == "requests"


def test_it_fails_in_anthropic_shape_on_the_messages_route(
    fake: BackgroundFakeUpstream, anthropic_client: anthropic.Anthropic,
) -> None:
    fake.set_rule("*", fail_status=529)

    with pytest.raises(anthropic.OverloadedError) as raised:
        anthropic_client.messages.create(model="claude-test", max_tokens=10, messages=HELLO)

    assert raised.value.body == {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}


def test_it_fails_only_the_configured_fraction_the_same_way_each_time(
    fake: BackgroundFakeUpstream, http: httpx.Client,
) -> None:
    fake.set_rule("gpt-4o", fail_status=503, fail_rate=0.5)
    first_run = chat_statuses(http, 40)
    fake.set_rule("gpt-4o", fail_status=503, fail_rate=0.5)
    second_run = chat_statuses(http, 40)

    assert first_run == second_run
    assert 10 <= first_run.count(503) <= 30
    assert set(first_run) == {200, 503}


def test_it_applies_the_wildcard_rule_to_models_without_their_own(
    fake: BackgroundFakeUpstream, http: httpx.Client,
) -> None:
    fake.set_rule("*", fail_status=500)
    fake.set_rule("gpt-4o", reply_words=2)

    other = http.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o-mini"})
    own = http.post("/v1/chat/completions", json=CHAT)

    assert other.status_code == 500
    assert other.json()["error"]["type"] == "server_error"
    assert own.json()["choices"][0]["message"]["content"] == "Mock reply"


def test_it_demands_the_required_key_from_both_kinds_of_client(
    fake: BackgroundFakeUpstream, openai_client: openai.OpenAI,
) -> None:
    fake.set_rule("*", require_key="sk-right")
    right = openai.OpenAI(base_url=openai_client.base_url, api_key="sk-right", max_retries=0)
    anthropic_right = anthropic.Anthropic(
        base_url=str(openai_client.base_url).removesuffix("/v1/"), api_key="sk-right",
        max_retries=0)

    with pytest.raises(openai.AuthenticationError) as raised:
        openai_client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert raised.value.code == "invalid_api_key"
    assert right.chat.completions.create(model="gpt-4o", messages=HELLO).choices
    assert anthropic_right.messages.create(
        model="claude-test", max_tokens=5, messages=HELLO).content


def test_it_hangs_until_the_client_gives_up(
    fake: BackgroundFakeUpstream, http: httpx.Client,
) -> None:
    fake.set_rule("gpt-4o", hang=True)

    with pytest.raises(httpx.ReadTimeout):
        http.post("/v1/chat/completions", json=CHAT, timeout=0.3)

    assert fake.stats()["requests"] == 1


def test_it_resets_the_connection_without_answering(
    fake: BackgroundFakeUpstream, openai_client: openai.OpenAI,
) -> None:
    fake.set_rule("gpt-4o", reset=True)

    with pytest.raises(openai.APIConnectionError):
        openai_client.chat.completions.create(model="gpt-4o", messages=HELLO)


def test_it_sends_json_that_does_not_parse(
    fake: BackgroundFakeUpstream, http: httpx.Client,
) -> None:
    fake.set_rule("gpt-4o", malformed=True)

    response = http.post("/v1/chat/completions", json=CHAT)

    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_it_sends_a_stream_event_that_does_not_parse(
    fake: BackgroundFakeUpstream, http: httpx.Client,
) -> None:
    fake.set_rule("gpt-4o", malformed=True)

    response = http.post("/v1/chat/completions", json=STREAM)

    payloads = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    broken = [p for p in payloads if p != "[DONE]" and not _parses(p)]
    assert len(broken) == 1


def _parses(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def test_it_leaves_out_choices_when_told_to(
    fake: BackgroundFakeUpstream, http: httpx.Client,
) -> None:
    fake.set_rule("gpt-4o", missing_fields=True)

    body = http.post("/v1/chat/completions", json=CHAT).json()

    assert "choices" not in body
    assert body["object"] == "chat.completion"


def test_it_sends_a_huge_but_valid_body(fake: BackgroundFakeUpstream, http: httpx.Client) -> None:
    fake.set_rule("gpt-4o", huge_body_mb=2)

    response = http.post("/v1/chat/completions", json=CHAT)

    assert len(response.content) > 2 * 1024 * 1024
    assert len(response.json()["choices"][0]["message"]["content"]) == 2 * 1024 * 1024


def test_it_cuts_a_stream_short_without_done_or_terminator(
    fake: BackgroundFakeUpstream, http: httpx.Client,
) -> None:
    fake.set_rule("gpt-4o", cut_stream_after=2)
    received: list[str] = []

    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/v1/chat/completions", json=STREAM) as response,
    ):
        received.extend(line for line in response.iter_lines() if line.startswith("data:"))

    contents = [orjson.loads(line[6:])["choices"][0]["delta"].get("content") for line in received]
    assert contents == ["", "Mock", " reply"]


def test_it_dribbles_so_that_no_single_read_times_out(
    fake: BackgroundFakeUpstream, http: httpx.Client,
) -> None:
    fake.set_rule("*", dribble_ms=1)
    started = time.monotonic()

    response = http.get("/v1/models", timeout=httpx.Timeout(5, read=0.2))

    assert time.monotonic() - started > 0.3  # every byte of a ~400-byte body waited 1 ms
    assert "gpt-4o" in response.text


def test_it_waits_the_configured_latency(fake: BackgroundFakeUpstream, http: httpx.Client) -> None:
    fake.set_rule("gpt-4o", latency_ms=250)
    started = time.monotonic()

    http.post("/v1/chat/completions", json=CHAT)

    assert time.monotonic() - started >= 0.25


def test_it_paces_stream_events(fake: BackgroundFakeUpstream, http: httpx.Client) -> None:
    fake.set_rule("gpt-4o", stream_chunks=2, chunk_delay_ms=100)
    started = time.monotonic()

    http.post("/v1/chat/completions", json=STREAM)

    # role, 2 deltas, finish and [DONE]: four pauses between five events.
    assert time.monotonic() - started >= 0.4


def test_it_omits_usage_when_told_to(fake: BackgroundFakeUpstream, http: httpx.Client) -> None:
    fake.set_rule("gpt-4o", no_usage=True)

    body = http.post("/v1/chat/completions", json=CHAT).json()
    stream = http.post("/v1/chat/completions", json={
        **STREAM, "stream_options": {"include_usage": True}}).text

    assert "usage" not in body
    assert "usage" not in stream
