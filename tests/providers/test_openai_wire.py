"""The OpenAI wire format as the adapter reads it: SSE framing and chunk interpretation."""

from __future__ import annotations

import pytest

from apps.providers.adapters.openai import chunk_event
from apps.providers.adapters.openai_shapes import DONE_FRAME
from apps.providers.adapters.wire import SseDecoder
from apps.providers.errors import ProviderError

CONTENT = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}'
USAGE = (
    b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,'
    b'"prompt_tokens_details":{"cached_tokens":2}}}'
)


def test_it_reassembles_events_split_across_reads():
    decoder = SseDecoder("p")

    assert decoder.feed(CONTENT[:10]) == []
    assert decoder.feed(CONTENT[10:] + b"\n\ndata: [DO") == [CONTENT]
    assert decoder.feed(b"NE]\r\n\r\n") == [b"data: [DONE]"]
    assert decoder.remainder() == b""


def test_it_returns_every_event_a_single_read_completed():
    assert SseDecoder("p").feed(CONTENT + b"\n\n" + USAGE + b"\n\n") == [CONTENT, USAGE]


def test_it_refuses_an_event_larger_than_the_upstream_limit(settings):
    settings.EDGE_MAX_UPSTREAM_BODY_BYTES = 100
    with pytest.raises(ProviderError) as error:
        SseDecoder("p").feed(b"data: " + b"x" * 200)
    assert error.value.code == "upstream_response_too_large"


def test_it_reads_content_and_usage_from_chunks():
    content, usage = chunk_event(CONTENT, "p"), chunk_event(USAGE, "p")

    assert content is not None and content.text == "Hi" and content.usage is None
    assert usage is not None and usage.usage_only
    assert usage.usage is not None
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens, usage.usage.cached_tokens) == (7, 3, 2)


def test_it_ends_the_stream_on_done_and_skips_comments():
    done = chunk_event(b"data: [DONE]", "p")

    assert done is not None and done.frame is DONE_FRAME
    assert chunk_event(b": keep-alive", "p") is None


def test_it_reports_an_upstream_error_event_as_the_providers_error():
    with pytest.raises(ProviderError, match="reported an error mid-stream: overloaded") as error:
        chunk_event(b'data: {"error": {"message": "overloaded", "type": "server_error"}}', "p")
    assert not error.value.retryable and error.value.code == "server_error"  # as Anthropic's and Gemini's say theirs


@pytest.mark.parametrize("frame", [b"data: {not json", b'data: {"id": "x"}', b"data: [1, 2]"])
def test_it_calls_anything_else_malformed(frame):
    with pytest.raises(ProviderError) as error:
        chunk_event(frame, "p")
    assert error.value.code == "upstream_malformed_response"


@pytest.mark.parametrize(("frame", "opening"), [
    (b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}}],"usage":null}', True),
    (b'data: {"choices":[{"index":0,"text":"","finish_reason":null}]}', True),  # legacy completions
    (CONTENT, False),
    (USAGE, False),
    (b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f"}}]}}]}', False),
    (b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', False),
])
def test_it_marks_only_the_chunks_that_say_nothing_yet_as_opening(frame, opening):
    event = chunk_event(frame, "p")

    assert event is not None and event.opening is opening
