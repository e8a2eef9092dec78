"""The Responses request → chat translation, the stored-response store without Redis, and the settings' checks."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.proxy.checks import check_stored_responses
from apps.proxy.errors import InvalidRequest
from apps.proxy.responses import store
from apps.proxy.responses.request import parse_body
from apps.proxy.responses.translate import Translation, Translator


def translate(**body: Any) -> Translation:
    parsed = parse_body({"model": "m", **body})
    return Translator().translate(parsed.native, "m", parsed.items, stream=False)


def test_a_conversation_of_items_becomes_chat_messages():
    translation = translate(instructions="Be brief.", input=[
        {"role": "developer", "content": "Use metric units."},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather here?"},
                                     {"type": "input_image", "image_url": "https://example.com/sky.png",
                                      "detail": "low"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call", "call_id": "call_2", "name": "weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "cold"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "warm"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ])

    assert translation.problem is None
    assert translation.chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Use metric units."},
        {"role": "user", "content": [{"type": "text", "text": "Weather here?"},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/sky.png",
                                                                         "detail": "low"}}]},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "cold"},
        {"role": "tool", "tool_call_id": "call_2", "content": "warm"},
    ]


def test_tools_choice_format_and_sampling_map_to_their_chat_names():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    chat = translate(
        input="hi", tools=[{"type": "function", "name": "f", "description": "d", "parameters": schema, "strict": True}],
        tool_choice={"type": "function", "name": "f"}, parallel_tool_calls=False, max_output_tokens=64,
        temperature=0.5, top_p=0.9, safety_identifier="user-7", reasoning={"effort": "low"},
        text={"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}},
    ).chat

    assert chat["tools"] == [{"type": "function", "function": {"name": "f", "parameters": schema, "description": "d",
                                                               "strict": True}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "out", "schema": schema,
                                                                              "strict": True}}
    assert (chat["max_tokens"], chat["temperature"], chat["top_p"], chat["parallel_tool_calls"], chat["user"],
            chat["reasoning_effort"]) == (64, 0.5, 0.9, False, "user-7", "low")


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "hi", "tools": [{"type": "function", "name": "f"}, {"type": "file_search"}]}, "tools[1].type"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": [{"type": "reasoning", "encrypted_content": "gAAA"}]}, "input[0].encrypted_content"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].file_id"),
    ({"input": "hi", "tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
    ({"input": "hi", "prompt": {"id": "pmpt_1"}}, "prompt"),
])
def test_what_chat_cannot_carry_is_named_but_still_translated_for_estimates(body: dict[str, Any], param: str):
    translation = translate(**body)

    assert isinstance(translation.problem, InvalidRequest) and translation.problem.param == param
    assert isinstance(translation.chat["messages"], list)


@override_settings(REDIS_URL="")
def test_without_redis_a_stored_response_lives_in_the_process_for_its_tenant_only():
    record = store.Stored.of({"id": "resp_local", "output": [{"type": "message"}]}, [{"role": "user"}])

    async def scenario() -> tuple[Any, ...]:
        await store.keep(1, record)
        found, stranger = await store.find(1, "resp_local"), await store.find(2, "resp_local")
        deleted, again = await store.forget(1, "resp_local"), await store.forget(1, "resp_local")
        return found, stranger, deleted, again, await store.find(1, "resp_local")

    found, stranger, deleted, again, after = asyncio.run(scenario())
    assert found is not None and found.conversation == [{"role": "user"}, {"type": "message"}]
    assert (stranger, deleted, again, after) == (None, True, False, None)


SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                                        max_size=4), max_leaves=12)
FIELDS = st.sampled_from(["input", "instructions", "tools", "tool_choice", "text", "max_output_tokens", "temperature",
                          "top_p", "metadata", "store", "stream", "previous_response_id", "parallel_tool_calls"])


KINDS = st.sampled_from(["message", "function_call", "function_call_output", "reasoning", "input_text", "input_image",
                         "output_text", "refusal", "function", "json_schema", "user", "assistant"])
PART = st.dictionaries(st.sampled_from(["type", "text", "image_url", "file_id", "refusal", "detail"]), KINDS | JSON,
                       max_size=4)
ITEM = st.dictionaries(
    st.sampled_from(["type", "role", "content", "call_id", "name", "arguments", "output", "encrypted_content"]),
    KINDS | JSON | st.lists(PART, max_size=3), max_size=6)
TOOL = st.dictionaries(st.sampled_from(["type", "name", "parameters", "description", "strict", "format", "schema"]),
                       KINDS | JSON, max_size=5)
SHAPED = {"input": st.lists(ITEM, min_size=1, max_size=4), "tools": st.lists(TOOL, max_size=3),
          "text": st.fixed_dictionaries({"format": TOOL}), "tool_choice": TOOL | KINDS}


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=5), st.sampled_from(sorted(SHAPED)).flatmap(
    lambda name: st.tuples(st.just(name), SHAPED[name])))
def test_items_tools_and_formats_of_any_shape_are_translated_or_refused_as_a_400(
    body: dict[str, Any], shaped: tuple[str, Any]
):
    body = {"model": "m", "input": "hi", **body, shaped[0]: shaped[1]}
    try:
        parsed = parse_body(body)
    except InvalidRequest:
        return
    Translator().translate(parsed.native, parsed.model, parsed.items, stream=parsed.stream)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=5), st.sampled_from(["input", "tools", "text", "tool_choice"]), JSON)
def test_any_json_is_translated_or_refused_as_a_400_never_a_crash(body: dict[str, Any], field: str, value: Any):
    body = {"model": "m", "input": "hi", **body, field: value}
    try:
        parsed = parse_body(body)
    except InvalidRequest:
        return
    Translator().translate(parsed.native, parsed.model, parsed.items, stream=parsed.stream)


def test_the_retention_and_the_local_store_must_be_positive():
    with override_settings(EDGE_RESPONSES_RETENTION_S=0, EDGE_RESPONSES_LOCAL_MAX_BYTES=-1):
        ids = {message.id for message in check_stored_responses()}
    assert ids == {"edge.E160", "edge.E161"}
    assert check_stored_responses() == []


SIGNED = {"google": {"thought_signature": "c2ln"}}


def test_translated_responses_and_events_validate_against_the_sdks_own_types():
    from openai.types.responses import Response, ResponseStreamEvent
    from pydantic import TypeAdapter

    from apps.providers.adapters.openai_shapes import ChunkWriter, ToolCall, done
    from apps.providers.contracts import Usage
    from apps.proxy.responses.output import from_completion, new_id, skeleton
    from apps.proxy.responses.stream import EventWriter, Progress

    body = {"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {}}],
            "metadata": {"k": "v"}, "max_output_tokens": 100}
    completion = orjson.dumps({"id": "x", "model": "up", "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": "Calling.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]})
    usage = Usage(prompt_tokens=5, completion_tokens=7, cached_tokens=1, source="provider")
    response = from_completion(skeleton(body, response_id=new_id("resp"), model="m", store=True), completion, usage)
    Response.model_validate(response, strict=False)
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]

    chunks = ChunkWriter("chatcmpl-1", "up")
    writer = EventWriter(skeleton(body, response_id=new_id("resp"), model="m", store=True), Progress(),
                         lambda text: Usage())
    upstream = (chunks.role(), chunks.text("Hel"), chunks.text("lo"),
                chunks.tool_call_start(0, ToolCall("call_1", "f", "", SIGNED)), chunks.tool_arguments(0, "{}"),
                chunks.finish("tool_calls"), chunks.usage(usage), done())
    frames = b"".join(event.frame for chunk in upstream for event in writer.feed(chunk))
    events = [orjson.loads(line[6:]) for line in frames.decode().splitlines() if line.startswith("data: ")]
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    for event in events:
        adapter.validate_python(event)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.completed" and events[-1]["response"]["usage"]["output_tokens"] == 7
    assert events[-1]["response"]["output"][-1]["extra_content"] == SIGNED  # Gemini's, for the next turn


def test_an_earlier_turns_built_in_tool_calls_are_left_out_and_new_input_is_named_by_its_own_index():
    parsed = parse_body({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]})
    history: list[dict[str, Any]] = [{"type": "message", "role": "user", "content": "news?"},
               {"type": "web_search_call", "id": "ws_1", "status": "completed"},
               {"type": "reasoning", "id": "rs_1", "summary": []},
               {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Quiet day."}]}]

    translation = Translator().translate(parsed.native, "m", parsed.items, stream=False, history=history)

    assert translation.chat["messages"] == [{"role": "user", "content": "news?"},
                                            {"role": "assistant", "content": "Quiet day."}]
    assert translation.problem is not None and translation.problem.param == "input[0].type"
