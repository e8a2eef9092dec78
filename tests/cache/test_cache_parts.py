"""The cache's parts on their own: the byte-bounded LRU, the key, the request directives, and the
round trip of an answer through stream assembly and replay."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.test import RequestFactory

from apps.providers.contracts import ChatRequest, Usage
from apps.proxy.cache.assemble import StreamAssembler
from apps.proxy.cache.control import directives_for
from apps.proxy.cache.generations import Generations, model_field, tenant_field
from apps.proxy.cache.keys import cache_key
from apps.proxy.cache.lru import ByteLRU
from apps.proxy.cache.replay import replay_stream
from apps.proxy.cache.stored import ENTRY_OVERHEAD_BYTES, CachedAnswer
from apps.proxy.errors import InvalidRequest
from apps.routing.table import ModelRoute, RoutePolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answer(size: int) -> CachedAnswer:
    return CachedAnswer(content=b"x" * (size - ENTRY_OVERHEAD_BYTES), usage=Usage(), cost_usd=Decimal(0))


def route(**cache_options: Any) -> ModelRoute:
    policy = RoutePolicy(**{"cache_enabled": True, "cache_ttl_s": 600, "policy_id": 7, **cache_options})
    return ModelRoute(name="m", strategy="failover", max_retries=0, targets=(), created=0, policy=policy)


def chat(**body: Any) -> ChatRequest:
    return ChatRequest(model="m", body={"model": "m", "messages": [{"role": "user", "content": "hi"}], **body},
                       stream=bool(body.get("stream")), include_usage=False)


# --- L1 -------------------------------------------------------------------------------------------

def test_the_lru_is_bounded_by_bytes_and_evicts_the_least_recently_used():
    lru = ByteLRU[CachedAnswer](max_bytes=4000)
    for key in "abcd":
        lru.put(key, answer(1000), ttl_s=60)
    lru.get("a")  # a is now the most recently used

    lru.put("e", answer(1000), ttl_s=60)

    assert lru.get("b") is None
    assert all(lru.get(key) is not None for key in "acde")
    assert lru.size == 4000 == lru.max_bytes


def test_the_lru_forgets_an_entry_once_its_ttl_has_passed():
    clock = Clock()
    lru = ByteLRU[CachedAnswer](max_bytes=10_000, clock=clock)
    lru.put("a", answer(500), ttl_s=10)

    clock.now += 9.9
    kept = lru.get("a")
    clock.now += 0.2

    assert kept is not None and lru.get("a") is None and lru.size == 0


def test_the_lru_keeps_no_answer_bigger_than_a_quarter_of_itself():
    lru = ByteLRU[CachedAnswer](max_bytes=4000)
    lru.put("small", answer(900), ttl_s=60)

    lru.put("big", answer(1100), ttl_s=60)

    assert lru.get("big") is None and lru.get("small") is not None


def test_a_stored_answer_round_trips_through_its_wire_form():
    original = CachedAnswer(content=b'{"choices": []}\n', usage=Usage(12, 5, 3, "provider", cache_creation_tokens=4),
                            cost_usd=Decimal("0.0000123456"))

    assert CachedAnswer.from_bytes(original.to_bytes()) == original
    assert CachedAnswer.from_bytes(b"not a cached answer") is None


# --- keys -----------------------------------------------------------------------------------------

def test_the_key_ignores_json_order_and_delivery_fields_but_nothing_else():
    generations = Generations()
    base = cache_key(chat(temperature=0.5, top_p=1), route(), 1, generations)

    assert cache_key(chat(top_p=1, temperature=0.5, stream=True, user="u"), route(), 1, generations) == base
    assert cache_key(chat(temperature=0.5, top_p=0.9), route(), 1, generations) != base
    assert cache_key(chat(temperature=0.5, top_p=1), route(), 2, generations) != base


def test_the_key_moves_when_the_tenant_or_the_model_is_purged():
    generations = Generations()
    before = cache_key(chat(), route(), 1, generations)

    generations.set(tenant_field(1), 1)
    after_tenant = cache_key(chat(), route(), 1, generations)
    generations.set(model_field("m"), 1)

    assert len({before, after_tenant, cache_key(chat(), route(), 1, generations)}) == 3


def test_the_key_follows_the_configured_model_so_a_pattern_purge_reaches_its_names_and_no_further():
    generations = Generations()
    asked = ChatRequest(model="claude-3", body={"model": "claude-3", "messages": []}, stream=False, include_usage=False)
    exact = dataclasses.replace(route(), name="claude-3")
    by_pattern = dataclasses.replace(route(), name="claude-3", pattern="claude-*")  # as RoutingTable.find makes it
    before = cache_key(asked, by_pattern, 1, generations)

    generations.set(model_field("claude-*"), 1)

    assert cache_key(asked, by_pattern, 1, generations) != before
    # An exact model and a pattern serving the same name never share an answer, purged or not.
    assert cache_key(asked, exact, 1, generations) == cache_key(asked, exact, 1, Generations())
    assert cache_key(asked, exact, 1, Generations()) != before


def test_tenants_of_a_shared_namespace_share_keys_and_others_do_not():
    generations = Generations()
    shared = route(cache_shared_tenants=frozenset({1, 2}))

    assert cache_key(chat(), shared, 1, generations) == cache_key(chat(), shared, 2, generations)
    assert cache_key(chat(), shared, 3, generations) != cache_key(chat(), shared, 1, generations)
    generations.set(tenant_field(2), 1)  # purging one member purges the namespace
    assert cache_key(chat(), shared, 1, generations) != cache_key(chat(), route(), 1, Generations())


# --- directives -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "expected"), [
    ({}, (True, True, 600)),
    ({"Cache-Control": "no-cache"}, (False, True, 600)),
    ({"Cache-Control": "No-Store"}, (True, False, 600)),
    ({"Cache-Control": "no-cache, no-store"}, (False, False, 600)),
    ({"Cache-Control": "max-age=60"}, (True, True, 60)),
    ({"Cache-Control": "max-age=99999"}, (True, True, 600)),
    ({"Cache-Control": "max-age=soon"}, (True, True, 600)),
    ({"x-edge-cache-ttl": "30"}, (True, True, 30)),
    ({"x-edge-cache-ttl": "0"}, (True, False, 0)),
])
def test_request_headers_narrow_what_the_policy_allows(headers: dict[str, str], expected: tuple[bool, bool, int]):
    directives = directives_for(RequestFactory().post("/", headers=headers), route())

    assert directives is not None
    assert (directives.read, directives.write, directives.ttl_s) == expected


def test_a_policy_with_the_cache_off_allows_nothing():
    assert directives_for(RequestFactory().post("/"), route(cache_enabled=False)) is None


def test_a_ttl_header_that_is_not_a_number_is_refused():
    with pytest.raises(InvalidRequest) as raised:
        directives_for(RequestFactory().post("/", headers={"x-edge-cache-ttl": "-5"}), route())

    assert raised.value.param == "x-edge-cache-ttl"


# --- streams --------------------------------------------------------------------------------------

COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "up-model",
    "system_fingerprint": "fp_1",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "logprobs": None,
         "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]},
         "logprobs": None, "finish_reason": "tool_calls"},
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}


def frames_of(body: bytes) -> list[bytes]:
    return [frame + b"\n\n" for frame in body.split(b"\n\n") if frame]


def test_a_replayed_answer_assembles_back_into_the_same_completion():
    assembler = StreamAssembler()

    for frame in frames_of(replay_stream(orjson.dumps(COMPLETION), include_usage=True)):
        assembler.feed(frame)

    assembled = assembler.completion()
    assert assembled is not None and orjson.loads(assembled) == COMPLETION


def test_a_replay_ends_with_done_and_carries_usage_only_when_asked():
    with_usage = frames_of(replay_stream(orjson.dumps(COMPLETION), include_usage=True))
    without = frames_of(replay_stream(orjson.dumps(COMPLETION), include_usage=False))

    assert with_usage[-1] == without[-1] == b"data: [DONE]\n\n"
    assert orjson.loads(with_usage[-2][6:])["usage"] == COMPLETION["usage"]
    assert all(b'"usage"' not in frame for frame in without)


def test_tool_call_arguments_that_arrive_in_pieces_are_joined():
    assembler = StreamAssembler()
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"q": '}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    for chunk in chunks:
        assembler.feed(b"data: " + orjson.dumps({"id": "c", "created": 1, "model": "m", **chunk}) + b"\n\n")

    completion = orjson.loads(assembler.completion() or b"{}")

    call = completion["choices"][0]["message"]["tool_calls"][0]
    assert call == {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}


def test_a_stream_without_a_finish_reason_assembles_into_nothing():
    assembler = StreamAssembler()
    assembler.feed(b'data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "half"}}]}\n\n')

    assert assembler.completion() is None


def test_a_chunk_the_assembler_cannot_read_leaves_the_stream_uncached_without_failing_it():
    assembler = StreamAssembler()
    assembler.feed(b'data: {"id": "c", "choices": ["not a choice"]}\n\n')
    assembler.feed(b'data: {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n')

    assert assembler.completion() is None


# --- settings -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("setting", "value", "check_id"), [
    ("EDGE_CACHE_L1_MAX_BYTES", -1, "edge.E050"),
    ("EDGE_CACHE_MAX_ENTRY_BYTES", -1, "edge.E050"),
    ("EDGE_CACHE_FLIGHT_WAIT_S", 0, "edge.E051"),
    ("EDGE_CACHE_STREAM_FLIGHT_WAIT_S", -1, "edge.E053"),
    ("EDGE_REDIS_PREFIX", "edge", "edge.E052"),
])
def test_a_misconfigured_cache_is_caught_at_start(settings: Any, setting: str, value: object, check_id: str):
    from apps.proxy.checks import check_cache_settings

    assert check_cache_settings() == []
    setattr(settings, setting, value)

    assert [message.id for message in check_cache_settings()] == [check_id]
