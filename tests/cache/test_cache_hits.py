"""Hits and misses per tier: identical, reordered and differing requests, tenants kept apart, and
what the ledger and the headers say about each."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest

from apps.routing.models import RoutingPolicy
from tests.cache.conftest import upstream_calls
from tests.conftest import wait_until_served
from tests.factories import make_key, make_tenant
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.usefixtures("live_db")


def test_it_answers_a_repeated_request_from_l1_without_calling_the_provider(cached: Served, fake):
    first = cached.post(cached.chat_body())
    second = cached.post(cached.chat_body())

    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["x-edge-cache"], second.headers["x-edge-cache"]) == ("miss", "hit-l1")
    assert second.content == first.content
    assert upstream_calls(fake, cached) == 1
    assert second.headers["x-edge-cost-usd"] == "0"
    assert "x-edge-provider" not in second.headers


def test_it_accounts_a_hit_at_zero_cost_with_the_cost_it_avoided(cached: Served):
    miss = cached.post(cached.chat_body())
    hit = cached.post(cached.chat_body())

    made, served = ledger_row(miss.headers["x-request-id"]), ledger_row(hit.headers["x-request-id"])
    assert made.cost_usd > 0 and (made.cache_status, made.cost_avoided_usd) == ("miss", Decimal(0))
    assert (served.cache_status, served.cost_usd, served.cost_avoided_usd) == ("hit-l1", Decimal(0), made.cost_usd)
    assert (served.prompt_tokens, served.completion_tokens, served.usage_source) == (
        made.prompt_tokens, made.completion_tokens, "provider",
    )
    assert served.status == "ok" and served.provider == ""


def test_it_hits_for_the_same_request_with_its_json_written_in_another_order(cached: Served, fake):
    body = cached.chat_body(temperature=0, tools=[{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}}}])
    reordered = json.loads(json.dumps(body), object_pairs_hook=lambda pairs: dict(reversed(pairs)))
    assert orjson.dumps(reordered) != orjson.dumps(body)

    cached.post(body)
    again = cached.post(reordered)

    assert again.headers["x-edge-cache"] == "hit-l1"
    assert upstream_calls(fake, cached) == 1


@pytest.mark.parametrize("difference", [
    {"messages": [{"role": "user", "content": "hello there friend!"}]},
    {"temperature": 0.7},
    {"max_tokens": 5},
    {"seed": 7},
    {"stop": ["END"]},
    {"n": 2},
    {"response_format": {"type": "json_object"}},
    {"tools": [{"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}]},
    {"some_future_parameter": True},
])
def test_it_misses_when_anything_that_changes_the_answer_differs(cached: Served, fake, difference):
    cached.post(cached.chat_body(temperature=0.2))

    different = cached.post({**cached.chat_body(temperature=0.2), **difference})

    assert different.status_code == 200
    assert different.headers["x-edge-cache"] == "miss"
    assert upstream_calls(fake, cached) == 2


def test_it_hits_when_only_delivery_and_bookkeeping_fields_differ(cached: Served, fake):
    cached.post(cached.chat_body(user="alice", metadata={"run": "1"}))

    again = cached.post(cached.chat_body(user="bob", metadata={"run": "2"}, store=False))

    assert again.headers["x-edge-cache"] == "hit-l1"
    assert upstream_calls(fake, cached) == 1


def test_tenant_a_never_gets_tenant_b_answer(cached: Served, fake):
    other_tenant = make_tenant()
    _, other_raw_key = make_key(other_tenant)
    body = cached.chat_body()

    mine = cached.post(body)
    theirs = cached.post(body, headers={"Authorization": f"Bearer {other_raw_key}"})

    assert (mine.headers["x-edge-cache"], theirs.headers["x-edge-cache"]) == ("miss", "miss")
    assert orjson.loads(theirs.content)["id"] != orjson.loads(mine.content)["id"]
    assert upstream_calls(fake, cached) == 2


def test_tenants_a_policy_opts_into_a_shared_namespace_share_answers(cached: Served, fake, gateway: GatewayProcess):
    partner = make_tenant()
    _, partner_key = make_key(partner)
    outsider = make_tenant()
    _, outsider_key = make_key(outsider)
    probe = cached.chat_body("probe for the shared namespace")
    cached.post(probe)  # cached in the tenant's own namespace, before it moves
    RoutingPolicy.objects.get(models=cached.route.model).cache_shared_tenants.set([cached.tenant, partner])
    wait_for_shared_namespace(cached, probe)
    before = upstream_calls(fake, cached)

    cached.post(cached.chat_body())
    partner_answer = cached.post(cached.chat_body(), headers={"Authorization": f"Bearer {partner_key}"})
    outsider_answer = cached.post(cached.chat_body(), headers={"Authorization": f"Bearer {outsider_key}"})

    assert partner_answer.headers["x-edge-cache"] == "hit-l1"
    assert outsider_answer.headers["x-edge-cache"] == "miss"
    assert upstream_calls(fake, cached) - before == 2


def wait_for_shared_namespace(served: Served, probe: dict[str, Any]) -> None:
    """Routing changes reach the gateway within EDGE_CONFIG_TTL_S (0.1 s here): ``probe``, cached before
    the change, misses once the tenant's key has moved namespaces."""
    wait_until(lambda: served.post(probe).headers["x-edge-cache"] == "miss", timeout_s=10,
               what="the tenant in the shared namespace")


def test_an_l2_hit_in_another_process_fills_its_l1(cached: Served, fake, second_gateway: GatewayProcess):
    wait_until_served(second_gateway.url, cached.raw_key, cached.model)
    first = cached.post(cached.chat_body())
    elsewhere = Served(second_gateway, cached.route, cached.tenant, cached.key, cached.raw_key)

    from_redis = _eventually_l2(elsewhere)
    from_memory = elsewhere.post(cached.chat_body())

    assert first.headers["x-edge-cache"] == "miss"
    assert from_redis.content == first.content
    assert from_memory.headers["x-edge-cache"] == "hit-l1"
    assert upstream_calls(fake, cached) == 1
    assert ledger_row(from_redis.headers["x-request-id"]).cache_status == "hit-l2"


def _eventually_l2(served: Served):
    # The L2 write happens off the response path, so it can land a moment after the first answer.
    import time

    for _ in range(50):
        response = served.post(served.chat_body(), headers=served.headers(**{"Cache-Control": "no-store"}))
        if response.headers["x-edge-cache"] == "hit-l2":
            return response
        time.sleep(0.02)
    raise AssertionError("the answer never reached L2")


def test_it_bypasses_the_cache_when_the_policy_has_it_off(serve_cached: Callable[..., Served], fake):
    uncached = serve_cached(cache_ttl_s=None)

    answers = [uncached.post(uncached.chat_body()) for _ in range(2)]

    assert [answer.headers["x-edge-cache"] for answer in answers] == ["bypass", "bypass"]
    assert upstream_calls(fake, uncached) == 2
    assert ledger_row(answers[1].headers["x-request-id"]).cache_status == "bypass"


def test_no_cache_skips_the_read_but_stores_the_fresh_answer(cached: Served, fake):
    cached.post(cached.chat_body())

    fresh = cached.post(cached.chat_body(), headers=cached.headers(**{"Cache-Control": "no-cache"}))
    after = cached.post(cached.chat_body())

    assert fresh.headers["x-edge-cache"] == "bypass"
    assert after.headers["x-edge-cache"] == "hit-l1" and after.content == fresh.content
    assert upstream_calls(fake, cached) == 2


def test_no_store_keeps_the_answer_out_of_the_cache(cached: Served, fake):
    first = cached.post(cached.chat_body(), headers=cached.headers(**{"Cache-Control": "no-store"}))
    second = cached.post(cached.chat_body())

    assert (first.headers["x-edge-cache"], second.headers["x-edge-cache"]) == ("miss", "miss")
    assert upstream_calls(fake, cached) == 2


def test_a_request_ttl_shortens_how_long_its_answer_is_kept(cached: Served, fake):
    import time

    cached.post(cached.chat_body(), headers=cached.headers(**{"x-edge-cache-ttl": "1"}))
    soon = cached.post(cached.chat_body())
    time.sleep(1.1)
    later = cached.post(cached.chat_body())

    assert (soon.headers["x-edge-cache"], later.headers["x-edge-cache"]) == ("hit-l1", "miss")
    assert upstream_calls(fake, cached) == 2


def test_a_malformed_ttl_header_is_a_clear_400(cached: Served):
    response = cached.post(cached.chat_body(), headers=cached.headers(**{"x-edge-cache-ttl": "soon"}))

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-edge-cache-ttl"
    assert response.json()["error"]["code"] == "invalid_cache_ttl"


def test_it_never_caches_an_error(cached: Served, fake):
    fake.set_rule(cached.upstream_model, fail_status=500)
    failed = cached.post(cached.chat_body())
    fake.set_rule(cached.upstream_model)

    recovered = cached.post(cached.chat_body())

    assert failed.status_code == 502 and "x-edge-cache" in failed.headers
    assert (recovered.status_code, recovered.headers["x-edge-cache"]) == (200, "miss")
    assert upstream_calls(fake, cached) == 2


def test_the_cost_avoided_is_what_the_answer_cost(cached: Served):
    miss = cached.post(cached.chat_body("what does this cost"))
    hit = cached.post(cached.chat_body("what does this cost"))

    assert Decimal(miss.headers["x-edge-cost-usd"]) == ledger_row(hit.headers["x-request-id"]).cost_avoided_usd
