"""``POST /v1/messages/count_tokens`` through the official anthropic SDK: Anthropic deployments count for
themselves, any other kind is counted by the gateway; keys and their models apply; nothing is billed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import pytest
from django.db import transaction

from apps.providers.tokens import count_tokens
from apps.routing.models import Deployment
from tests.factories import make_provider
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row, serve, serve_kind
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.usefixtures("live_db")
SYSTEM = "Be brief."
MESSAGES: Any = [{"role": "user", "content": "hello there friend"}]
TOOLS: Any = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
# The fake's contract (apps/providers/fake_upstream/content.py): words of the system prompt, plus the
# words of each message and 3 per message.
FAKE_COUNT = 2 + 3 + 3


def client_with(served: Served, raw_key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.gateway.url, api_key=raw_key, max_retries=0)


def count(served: Served, **options: Any) -> Any:
    return served.anthropic_client().messages.with_raw_response.count_tokens(
        model=served.model, system=SYSTEM, messages=MESSAGES, **options)


def test_an_anthropic_deployment_counts_for_itself_and_nothing_is_billed(gateway: GatewayProcess, fake):
    served = serve_kind(gateway, fake.base_url, "anthropic")

    raw = count(served, tools=TOOLS, extra_headers={"anthropic-beta": "token-counting-2024-11-01"})

    assert raw.parse().input_tokens == FAKE_COUNT
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1/messages/count_tokens"
    assert sent["headers"]["anthropic-beta"] == "token-counting-2024-11-01"
    assert sent["body"] == {"model": served.upstream_model, "system": SYSTEM, "messages": MESSAGES, "tools": TOOLS}
    assert raw.headers["x-edge-provider"] == served.route.provider.name
    row = ledger_row(raw.headers["x-request-id"])
    assert (row.endpoint, row.status, row.public_model, row.provider) == (
        "count_tokens", "ok", served.model, served.route.provider.name)
    assert (row.prompt_tokens, row.completion_tokens, row.cost_usd) == (0, 0, Decimal(0))


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_any_other_kind_is_counted_by_the_gateways_tokenizer_without_calling_the_provider(
    gateway: GatewayProcess, fake, kind: str,
):
    served = serve_kind(gateway, fake.base_url, kind)

    raw = count(served)

    expected = count_tokens(SYSTEM) + 3 + count_tokens("hello there friend") + 3  # o200k, 3 per message
    assert raw.parse().input_tokens == expected
    assert fake.stats()["requests"] == 0
    row = ledger_row(raw.headers["x-request-id"])
    assert (row.endpoint, row.status, row.note, row.prompt_tokens, row.cost_usd) == (
        "count_tokens", "ok", "counted by the gateway", 0, Decimal(0))


def test_tool_definitions_count_too(gateway: GatewayProcess, fake_v1: str):
    served = serve(gateway, fake_v1)

    without, with_tools = count(served).parse().input_tokens, count(served, tools=TOOLS).parse().input_tokens

    assert with_tools > without


def test_a_model_the_key_may_not_use_is_anthropics_404(gateway: GatewayProcess, fake_v1: str):
    allowed, forbidden = serve(gateway, fake_v1), serve(gateway, fake_v1)
    _, raw_key = allowed.another_key(allowed_models=[allowed.model])

    with pytest.raises(anthropic.NotFoundError) as raised:
        client_with(allowed, raw_key).messages.count_tokens(model=forbidden.model, messages=MESSAGES)

    assert raised.value.body == {"type": "error", "error": {
        "type": "not_found_error",
        "message": f"The model `{forbidden.model}` does not exist or you do not have access to it."}}


def test_a_bad_key_and_a_bad_body_get_anthropics_errors(gateway: GatewayProcess, fake_v1: str):
    served = serve(gateway, fake_v1)

    with pytest.raises(anthropic.AuthenticationError):
        client_with(served, "sk-edge-wrong").messages.count_tokens(model=served.model, messages=MESSAGES)
    with pytest.raises(anthropic.BadRequestError) as raised:
        served.anthropic_client().messages.count_tokens(model=served.model, messages=[])

    assert raised.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_anthropics_refusal_of_the_request_is_the_clients_answer(gateway: GatewayProcess, fake):
    served = serve_kind(gateway, fake.base_url, "anthropic")
    fake.set_rule(served.upstream_model, fail_status=400)

    with pytest.raises(anthropic.BadRequestError):
        served.anthropic_client().messages.count_tokens(model=served.model, messages=MESSAGES)


def test_an_anthropic_outage_is_an_error_unless_another_kind_could_serve_the_model(gateway: GatewayProcess, fake):
    served = serve_kind(gateway, fake.base_url, "anthropic", max_retries=1)
    fake.set_rule(served.upstream_model, fail_status=500)

    with pytest.raises(anthropic.InternalServerError):
        served.anthropic_client().messages.count_tokens(model=served.model, messages=MESSAGES)

    with transaction.atomic():
        other = make_provider(f"{fake.base_url}/v1")
        Deployment.objects.create(model=served.route.model, provider=other, upstream_model="local-one",
                                  input_usd_per_mtok=1, output_usd_per_mtok=1)
    served.wait_for_provider(other.name)
    wait_until(lambda: count(served).status_code == 200, what="the count served by the gateway")
    raw = count(served)

    assert raw.parse().input_tokens == count_tokens(SYSTEM) + count_tokens("hello there friend") + 6
    assert ledger_row(raw.headers["x-request-id"]).note == "counted by the gateway"
