"""Idempotency keys through the gateway: a repeat gets the first response, with one provider call and one charge."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import openai
import pytest

from apps.billing.models import LedgerEntry
from tests.conftest import wait_until_served
from tests.factories import unique
from tests.harness.served import Served, ledger_row, wait_for_rows
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.slow


def calls(fake, served: Served) -> int:
    return int(fake.stats()["by_model"].get(served.upstream_model, 0))


def test_a_repeat_gets_the_first_response_again_without_a_provider_call_or_a_charge(served: Served, fake):
    key = unique("idem")
    first = served.post(served.chat_body(), headers=served.headers(**{"Idempotency-Key": key}))
    repeat = served.post(served.chat_body(), headers=served.headers(**{"Idempotency-Key": key}))

    assert (first.status_code, repeat.status_code) == (200, 200)
    assert repeat.content == first.content
    assert repeat.headers["x-request-id"] == first.headers["x-request-id"]
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert calls(fake, served) == 1
    original = ledger_row(first.headers["x-request-id"])
    replays = LedgerEntry.objects.filter(note__contains=first.headers["x-request-id"])
    wait_until(replays.exists, what="the replay's own ledger row")
    assert original.cost_usd > 0
    assert [(row.cost_usd, row.http_status) for row in replays] == [(Decimal(0), 200)]


def test_ten_concurrent_repeats_across_two_gateways_make_one_provider_call(served: Served, fake, second_gateway):
    wait_until_served(second_gateway.url, served.raw_key, served.model)
    fake.set_rule(served.upstream_model, latency_ms=300)
    key = unique("idem")
    urls = [served.gateway.url, second_gateway.url]

    def send(index: int) -> httpx.Response:
        return httpx.post(f"{urls[index % 2]}/v1/chat/completions", json=served.chat_body(), timeout=30,
                          headers=served.headers(**{"Idempotency-Key": key}))

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(send, range(10)))

    assert [response.status_code for response in responses] == [200] * 10
    assert len({response.content for response in responses}) == 1
    assert len({response.headers["x-request-id"] for response in responses}) == 1
    assert calls(fake, served) == 1


def test_the_same_key_with_another_body_is_refused(served: Served, fake):
    key = unique("idem")
    served.post(served.chat_body("one"), headers=served.headers(**{"Idempotency-Key": key}))

    reused = served.post(served.chat_body("two"), headers=served.headers(**{"Idempotency-Key": key}))

    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert calls(fake, served) == 1
    ledger_row(reused.headers["x-request-id"])  # a refused repeat is a request too


def test_a_stream_replays_as_a_stream(served: Served, fake):
    key = unique("idem")
    client = served.client()

    def streamed() -> str:
        stream = client.chat.completions.create(model=served.model, messages=[{"role": "user", "content": "hi"}],
                                                stream=True, extra_headers={"Idempotency-Key": key})
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    first, repeat = streamed(), streamed()

    assert first and repeat == first
    assert calls(fake, served) == 1


def test_a_failure_is_not_kept_and_a_retry_runs_again(served: Served, fake):
    key = unique("idem")
    fake.set_rule(served.upstream_model, fail_status=500)
    failed = served.post(served.chat_body(), headers=served.headers(**{"Idempotency-Key": key}))
    fake.set_rule(served.upstream_model, fail_status=None)

    retried = served.post(served.chat_body(), headers=served.headers(**{"Idempotency-Key": key}))

    assert (failed.status_code, retried.status_code) == (502, 200)
    assert retried.headers["x-request-id"] != failed.headers["x-request-id"]
    assert "Idempotent-Replayed" not in retried.headers
    wait_for_rows([failed.headers["x-request-id"], retried.headers["x-request-id"]])


def test_the_sdk_raises_its_usual_error_for_a_reused_key(served: Served):
    key = unique("idem")
    client = served.client()
    client.chat.completions.create(model=served.model, messages=[{"role": "user", "content": "a"}],
                                   extra_headers={"Idempotency-Key": key})

    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model=served.model, messages=[{"role": "user", "content": "b"}],
                                       extra_headers={"Idempotency-Key": key})
