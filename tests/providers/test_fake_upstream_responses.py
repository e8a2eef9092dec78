"""The fake upstream's Responses API (what `openai` deployments get from /v1/responses) in the SDK's exact types."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from apps.providers.fake_upstream import BackgroundFakeUpstream

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
TOOL = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}},
                                                          "required": ["n"]}}


def post(fake: BackgroundFakeUpstream, **body: Any) -> httpx.Response:
    return httpx.post(f"{fake.base_url}/v1/responses", json={"model": "m", **body}, timeout=5)


def test_a_response_has_the_sdks_shape_and_counts_words(fake: BackgroundFakeUpstream):
    answer = post(fake, instructions="Be brief.", input="hello there friend", max_output_tokens=20).json()

    response = Response.model_validate(answer)
    assert response.output_text.startswith("Mock reply to: hello there friend") and response.status == "completed"
    assert response.usage is not None and (response.usage.input_tokens, response.usage.output_tokens) == (8, 12)


def test_a_forced_tool_call_and_a_schema_are_answered_in_kind(fake: BackgroundFakeUpstream):
    called = Response.model_validate(post(fake, input="count", tools=[TOOL], tool_choice="required").json())
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    shaped = Response.model_validate(post(fake, input="check", text={"format": {
        "type": "json_schema", "name": "r", "schema": schema}}).json())

    assert called.output[0].type == "function_call" and orjson.loads(called.output[0].arguments) == {"n": 1}
    assert orjson.loads(shaped.output_text) == {"ok": True}


def test_a_stream_is_numbered_events_of_the_sdks_types(fake: BackgroundFakeUpstream):
    for body in ({"input": "hello there friend"}, {"input": "count", "tools": [TOOL], "tool_choice": "required"}):
        stream = post(fake, stream=True, **body).text
        events = [EVENTS.validate_python(orjson.loads(line[6:])) for line in stream.splitlines()
                  if line.startswith("data: ")]

        assert [event.sequence_number for event in events] == list(range(len(events)))
        assert events[0].type == "response.created" and events[-1].type == "response.completed"
        assert events[-1].response.usage is not None
