"""The official openai SDK against a live gateway process and the fake provider."""

from __future__ import annotations

import time
from decimal import Decimal

import openai
import pytest

from apps.billing.models import LedgerEntry
from tests.conftest import wait_until_served
from tests.factories import make_key, make_route, make_tenant

pytestmark = pytest.mark.usefixtures("live_db")


def ledger_row(request_id: str, timeout_s: float = 5.0) -> LedgerEntry:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = LedgerEntry.objects.filter(request_id=request_id).first()
        if row is not None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"no ledger row for {request_id}")


def test_it_completes_a_chat_and_bills_it_exactly(gateway, fake_v1):
    route = make_route(fake_v1, input_price="0.15", output_price="0.60")
    _, raw_key = make_key(make_tenant())
    wait_until_served(gateway.url, raw_key, route.model.name)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=raw_key)

    raw = client.chat.completions.with_raw_response.create(
        model=route.model.name, messages=[{"role": "user", "content": "hello there friend"}]
    )
    completion = raw.parse()

    row = ledger_row(raw.headers["x-request-id"])
    expected = (Decimal(completion.usage.prompt_tokens) * Decimal("0.15")
                + Decimal(completion.usage.completion_tokens) * Decimal("0.60")) / 1_000_000
    assert completion.choices[0].message.content.startswith("Mock reply to: hello there friend")
    assert (row.prompt_tokens, row.completion_tokens) == (completion.usage.prompt_tokens, completion.usage.completion_tokens)
    assert row.cost_usd == expected
    assert raw.headers["x-edge-cost-usd"] == f"{expected:.10f}"
    assert row.status == "ok" and row.usage_source == "provider" and row.public_model == route.model.name
