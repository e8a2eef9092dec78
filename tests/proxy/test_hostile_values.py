"""Nothing a client or a provider sends can stop, corrupt or skip the ledger.

A client's model name is copied into the ledger and into headers, so it must be printable and
bounded; a provider's usage is priced, so it must be believable for the request. Each hostile value
gets its own clear answer, its own ledger row, and the next normal request's row still lands.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.billing.pricing import worst_case_cost
from apps.proxy.usage_bounds import UsageBounds
from apps.routing.prices import Prices
from tests.factories import make_route, unique
from tests.harness.served import Served, ledger_row, serve
from tests.harness.waiting import wait_until

FLUSH_DEADLINE_S = 5.0  # the test gateways flush every 50 ms; this is generous on a loaded machine


def assert_ledger_flows(served: Served) -> None:
    """A normal request after the hostile one: its row lands promptly."""
    started = time.monotonic()
    response = served.post(served.chat_body())
    assert response.status_code == 200
    ledger_row(response.headers["x-request-id"], timeout_s=FLUSH_DEADLINE_S)
    assert time.monotonic() - started < FLUSH_DEADLINE_S


@pytest.mark.parametrize("model", ["x\u0000y", "line\nbreak", "unit\u001fseparator", "tab\tbed", "m" * 201,
                                   "zero\u200bwidth"])
def test_it_refuses_a_model_name_it_could_not_copy_safely_and_still_records_it(served: Served, model: str):
    response = served.post({"model": model, "messages": [{"role": "user", "content": "hi"}]})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("model", "invalid_value")
    row = ledger_row(response.headers["x-request-id"])
    assert (row.status, row.http_status, row.error_type) == ("error", 400, "invalid_value")
    assert_ledger_flows(served)


def test_a_pattern_model_never_sends_a_control_character_upstream(gateway, fake, fake_v1, live_db):
    prefix = unique("any")
    make_route(fake_v1, name=f"{prefix}-*", upstream_model="*")
    served = serve(gateway, fake_v1)  # its key may use every model, the pattern's names included
    wait_until(lambda: served.post({**served.chat_body(), "model": f"{prefix}-ok"}).status_code == 200,
               what="the pattern model served")
    seen_before = len(fake.requests())

    for model in (f"{prefix}-a\nb", f"{prefix}-\u001f"):
        response = served.post({**served.chat_body(), "model": model})
        assert response.status_code == 400 and response.json()["error"]["param"] == "model"
    assert len(fake.requests()) == seen_before


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"max_tokens": -1}, "max_tokens", "invalid_value"),
    ({"max_tokens": 0}, "max_tokens", "invalid_value"),
    ({"max_completion_tokens": 2**31}, "max_completion_tokens", "invalid_value"),
    ({"max_tokens": "5"}, "max_tokens", "invalid_type"),
    ({"max_tokens": 5.5}, "max_tokens", "invalid_type"),
    ({"n": 0}, "n", "invalid_value"),
    ({"n": 129}, "n", "invalid_value"),
    ({"stream": "yes"}, "stream", "invalid_type"),
    ({"messages": []}, "messages", "invalid_type"),
])
def test_it_refuses_what_admission_would_read_wrongly_before_calling_a_provider(
    served: Served, fake, body: dict[str, Any], param: str, code: str
):
    seen_before = len(fake.requests())

    response = served.post({**served.chat_body(), **body})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert len(fake.requests()) == seen_before


HOSTILE_USAGE: list[dict[str, Any]] = [
    {"prompt_tokens": -7},
    {"completion_tokens": -1},
    {"prompt_tokens": 2**31},
    {"completion_tokens": 2**31},
    {"prompt_tokens": 10**12, "completion_tokens": 10**12},
    {"prompt_tokens": 2 * 10**9, "completion_tokens": 2 * 10**9},
    {"prompt_tokens": 1e300},
    {"prompt_tokens": 12.5},
    {"completion_tokens": "many"},
    {"prompt_tokens": [1]},
    {"prompt_tokens_details": {"cached_tokens": 10**9}},
]


def ceiling_usd(served: Served, body: dict[str, Any], output_tokens: int) -> Decimal:
    """The most this request could be billed: its usage bounds at the deployment's dearest prices."""
    encoded = httpx.Request("POST", served.gateway.url, json=body).content  # what served.post() sends
    bounds = UsageBounds.of(body_bytes=len(encoded), media_parts=0, output_tokens=output_tokens)
    deployment = served.route.deployment
    input_price = deployment.input_usd_per_mtok
    prices = Prices(input_usd_per_mtok=input_price, output_usd_per_mtok=deployment.output_usd_per_mtok,
                    cached_input_usd_per_mtok=deployment.cached_input_usd_per_mtok or input_price,
                    cache_write_usd_per_mtok=deployment.cache_write_usd_per_mtok or input_price)
    return worst_case_cost(bounds.prompt_tokens, bounds.completion_tokens, [prices])


@pytest.mark.parametrize("usage", HOSTILE_USAGE, ids=[str(sorted(u)) for u in HOSTILE_USAGE])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_usage_a_provider_could_not_have_used_is_billed_on_the_gateways_estimate(
    served: Served, fake, usage: dict[str, Any], stream: bool
):
    fake.set_rule(served.upstream_model, reported_usage=usage)
    body = served.chat_body(max_tokens=50, stream=stream)
    if stream:
        body["stream_options"] = {"include_usage": True}

    response = served.post(body)

    assert response.status_code == 200
    assert "error" not in response.text
    row = ledger_row(response.headers["x-request-id"])
    assert (row.status, row.http_status, row.usage_source) == ("ok", 200, "estimated")
    assert row.usage_note.startswith("provider reported")
    assert 0 < row.prompt_tokens < 100 and 0 < row.completion_tokens <= 50
    assert Decimal(0) < row.cost_usd <= ceiling_usd(served, body, 50)
    if not stream:
        assert Decimal(response.headers["x-edge-cost-usd"]) == row.cost_usd
    fake.set_rule(served.upstream_model, reported_usage=None)
    assert_ledger_flows(served)


def test_believable_usage_is_billed_as_the_provider_reported_it(served: Served, fake):
    fake.set_rule(served.upstream_model, reported_usage={"prompt_tokens": 11, "completion_tokens": 7})

    response = served.post(served.chat_body(max_tokens=50))

    row = ledger_row(response.headers["x-request-id"])
    assert (row.prompt_tokens, row.completion_tokens, row.usage_source, row.usage_note) == (11, 7, "provider", "")


# Model names: anything a JSON string can hold, printable or not.
model_names = st.text(st.characters(codec="utf-8"), min_size=0, max_size=260)
# Usage values: what a JSON number, string, list or null can carry.
usage_values = st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5), st.none(),
                         st.lists(st.integers(min_value=0, max_value=10), max_size=2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=model_names, prompt=usage_values, completion=usage_values, stream=st.booleans())
def test_no_model_name_or_usage_stops_the_ledger_or_gets_a_500(
    served: Served, fake, model: str, prompt: object, completion: object, stream: bool
):
    fake.set_rule(served.upstream_model, reported_usage={"prompt_tokens": prompt, "completion_tokens": completion})
    hostile = served.post({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    priced = served.post(served.chat_body(max_tokens=20, stream=stream))

    assert hostile.status_code in (400, 404)
    assert priced.status_code == 200
    for response in (hostile, priced):
        row = ledger_row(response.headers["x-request-id"], timeout_s=FLUSH_DEADLINE_S)
        assert row.http_status == response.status_code
        assert Decimal(0) <= row.cost_usd <= ceiling_usd(served, served.chat_body(max_tokens=20, stream=stream), 20)
