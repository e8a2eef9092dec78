"""The ledger, as a live gateway writes it: one row per authenticated request, and exact money.

The fake's token counts are a contract (apps/providers/fake_upstream/content.py): prompt tokens are
the words of every message plus 3 per message, and the reply is 12 words, so costs are known here
without trusting what the gateway read from the provider.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, fields
from decimal import Decimal

import httpx
import openai
import pytest
from django.db import connection

from apps.billing.ledger import insert_rows
from apps.billing.ledger_write import LedgerRecord
from apps.billing.ledger_write import parameters as _parameters
from apps.billing.models import LedgerEntry
from apps.providers.tokens import count_tokens
from tests.factories import make_key, make_tenant, unique
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row, serve, wait_for_rows

pytestmark = pytest.mark.usefixtures("live_db")

PROMPT = "one two three four five six seven"
PROMPT_TOKENS = 7 + 3
REPLY_TOKENS = 12
CACHED_TOKENS = 4
INPUT, OUTPUT, CACHED = Decimal("2.50"), Decimal("10.00"), Decimal("1.25")


@pytest.fixture
def priced(gateway: GatewayProcess, fake_v1: str) -> Iterator[Served]:
    yield serve(gateway, fake_v1, input_price=str(INPUT), output_price=str(OUTPUT), cached_price=str(CACHED))


def chat(served: Served, *, stream: bool, text: str = PROMPT) -> tuple[str, str]:
    """One chat through the SDK; returns (reply text, x-request-id)."""
    raw = served.client().chat.completions.with_raw_response.create(
        model=served.model, messages=[{"role": "user", "content": text}], stream=stream
    )
    parsed = raw.parse()
    if isinstance(parsed, openai.Stream):
        reply = "".join(chunk.choices[0].delta.content or "" for chunk in parsed if chunk.choices)
    else:
        reply = parsed.choices[0].message.content or ""
    return reply, raw.headers["x-request-id"]


def test_it_writes_exactly_one_row_per_authenticated_request(priced: Served, fake):
    key, raw_key = priced.another_key()
    headers = {"Authorization": f"Bearer {raw_key}"}
    refused = priced.post(priced.chat_body(), headers={"Authorization": "Bearer sk-edge-unknown"})
    fake.set_rule(priced.upstream_model, fail_status=500, fail_rate=0.5)

    answers = [
        priced.post(priced.chat_body(), headers=headers),
        priced.post(priced.chat_body(stream=True), headers=headers),
        priced.post(priced.chat_body(stream="yes"), headers=headers),
        priced.post({**priced.chat_body(), "model": "not-a-model"}, headers=headers),
        httpx.get(f"{priced.gateway.url}/v1/models", headers=headers),
        *(priced.post(priced.chat_body(), headers=headers) for _ in range(6)),
    ]

    request_ids = [answer.headers["x-request-id"] for answer in answers]
    rows = wait_for_rows(request_ids)
    time.sleep(0.3)  # several flushes of the test gateway: anything extra would have landed by now
    assert LedgerEntry.objects.filter(api_key=key).count() == len(answers) == len(set(request_ids))
    assert [rows[request_id].http_status for request_id in request_ids] == [answer.status_code for answer in answers]
    assert {answer.status_code for answer in answers} >= {200, 400, 404, 502}
    assert refused.status_code == 401 and not LedgerEntry.objects.filter(request_id=refused.headers["x-request-id"])


@pytest.mark.parametrize("stream", [False, True])
def test_it_bills_provider_usage_exactly_at_the_deployments_prices(priced: Served, stream: bool):
    _, request_id = chat(priced, stream=stream)

    row = ledger_row(request_id)
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (PROMPT_TOKENS, REPLY_TOKENS, 0)
    assert row.cost_usd == (PROMPT_TOKENS * INPUT + REPLY_TOKENS * OUTPUT) / 1_000_000
    assert (row.input_usd_per_mtok, row.output_usd_per_mtok, row.cached_input_usd_per_mtok) == (INPUT, OUTPUT, CACHED)
    assert (row.cache_write_tokens, row.cache_write_usd_per_mtok) == (0, INPUT)  # no write price: the input price
    assert (row.usage_source, row.stream, row.status, row.http_status) == ("provider", stream, "ok", 200)
    assert (row.upstream_model, row.deployment_id) == (priced.upstream_model, priced.route.deployment.pk)


@pytest.mark.parametrize("stream", [False, True])
def test_it_bills_cached_prompt_tokens_at_the_cached_price(priced: Served, fake, stream: bool):
    fake.set_rule(priced.upstream_model, cached_tokens=CACHED_TOKENS)

    _, request_id = chat(priced, stream=stream)

    row = ledger_row(request_id)
    uncached = PROMPT_TOKENS - CACHED_TOKENS
    assert row.cached_tokens == CACHED_TOKENS
    assert row.cost_usd == (uncached * INPUT + CACHED_TOKENS * CACHED + REPLY_TOKENS * OUTPUT) / 1_000_000


def test_it_tells_the_client_what_the_request_cost(priced: Served):
    raw = priced.client().chat.completions.with_raw_response.create(
        model=priced.model, messages=[{"role": "user", "content": PROMPT}]
    )

    assert Decimal(raw.headers["x-edge-cost-usd"]) == ledger_row(raw.headers["x-request-id"]).cost_usd > 0


@pytest.mark.parametrize("stream", [False, True])
def test_it_estimates_usage_the_provider_did_not_report(priced: Served, fake, stream: bool):
    fake.set_rule(priced.upstream_model, no_usage=True)

    reply, request_id = chat(priced, stream=stream)

    row = ledger_row(request_id)
    assert row.usage_source == "estimated"
    assert row.prompt_tokens == count_tokens(PROMPT) + 3 and row.completion_tokens == count_tokens(reply) > 0
    assert row.cost_usd == (row.prompt_tokens * INPUT + row.completion_tokens * OUTPUT) / 1_000_000


def test_it_records_time_to_first_token_for_streams(priced: Served, fake):
    fake.set_rule(priced.upstream_model, latency_ms=200, chunk_delay_ms=30)

    _, streamed_id = chat(priced, stream=True)
    _, whole_id = chat(priced, stream=False)

    streamed, whole = ledger_row(streamed_id), ledger_row(whole_id)
    assert streamed.ttft_ms is not None and 200 <= streamed.ttft_ms < streamed.latency_ms
    assert streamed.latency_ms >= streamed.ttft_ms + REPLY_TOKENS * 30 * 0.8
    assert whole.ttft_ms is None


def test_it_replays_spooled_rows_written_before_the_cache_write_columns():
    tenant = make_tenant()
    key, _ = make_key(tenant)
    request_id = unique("req-old")
    old_row = {"request_id": request_id, "tenant_id": tenant.pk, "api_key_id": key.pk, "endpoint": "chat.completions",
               "public_model": "m", "stream": False, "status": "ok", "http_status": 200,
               "created_at": "2026-11-22T10:00:00+00:00", "latency_ms": 3, "prompt_tokens": 10,
               "input_usd_per_mtok": "3", "cost_usd": "0.00003", "attempts": []}

    insert_rows([old_row])

    row = LedgerEntry.objects.get(request_id=request_id)
    assert (row.prompt_tokens, row.usage_note) == (10, "")
    assert (row.attempts, row.cache_status, row.cost_avoided_usd) == ([], "", Decimal(0))
    assert row.cost_usd == Decimal("0.00003")


# Ledger columns this release adds; the release before it inserts rows without them.
NEW_LEDGER_COLUMNS = ("usage_note", "price_version_id")  # this release's


def test_a_gateway_of_the_previous_release_still_records_rows_once_this_releases_columns_exist():
    # Releases migrate before restarting gateways: until then the old ones insert without the new columns.
    tenant = make_tenant()
    key, _ = make_key(tenant)
    request_id = unique("req-previous")
    record = LedgerRecord(request_id=request_id, tenant_id=tenant.pk, api_key_id=key.pk, endpoint="chat.completions",
                          public_model="m", stream=False, status="ok", http_status=200,
                          created_at="2026-11-22T10:00:00+00:00", latency_ms=3, prompt_tokens=10)
    values = dict(zip([field.name for field in fields(LedgerRecord)] + ["kind", "adjusts_id"],
                      _parameters(asdict(record)), strict=True))
    for new_column in NEW_LEDGER_COLUMNS:
        del values[new_column]

    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {LedgerEntry._meta.db_table} ({', '.join(values)}) "
                       f"VALUES ({', '.join(['%s'] * len(values))})", list(values.values()))

    row = LedgerEntry.objects.get(request_id=request_id)
    assert (row.prompt_tokens, row.cache_write_tokens, row.cache_write_usd_per_mtok) == (10, 0, None)
