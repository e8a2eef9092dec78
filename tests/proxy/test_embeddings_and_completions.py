"""``/v1/embeddings`` and the legacy ``/v1/completions``: routed, accounted and priced like chat."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import openai
import pytest
from django.db import transaction

from apps.providers.fake_upstream import BackgroundFakeUpstream
from apps.routing.models import Deployment
from tests.factories import make_provider
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row, serve_kind

pytestmark = pytest.mark.usefixtures("live_db")
INPUT_PRICE, OUTPUT_PRICE = Decimal("0.02"), Decimal("0.60")


def _serve(gateway: GatewayProcess, fake: BackgroundFakeUpstream, kind: str) -> Served:
    return serve_kind(gateway, fake.base_url, kind, input_price=str(INPUT_PRICE), output_price=str(OUTPUT_PRICE))


@pytest.mark.parametrize("kind", ["openai", "openai_compatible", "azure_openai"])
def test_embeddings_are_relayed_and_billed_at_the_input_price(
    kind: str, gateway: GatewayProcess, fake: BackgroundFakeUpstream
):
    served = _serve(gateway, fake, kind)
    raw = served.client().embeddings.with_raw_response.create(
        model=served.model, input=["hello there friend", "two words"], dimensions=8)
    answer = raw.parse()

    assert [len(item.embedding) for item in answer.data] == [8, 8]
    assert answer.usage.prompt_tokens == 5  # the fake counts words
    row = ledger_row(raw.headers["x-request-id"])
    assert row.endpoint == "embeddings" and row.status == "ok" and row.usage_source == "provider"
    assert (row.prompt_tokens, row.completion_tokens) == (5, 0)
    assert row.cost_usd == 5 * INPUT_PRICE / 1_000_000


def test_gemini_embeddings_are_translated_and_billed_from_a_local_count(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream
):
    served = _serve(gateway, fake, "gemini")
    raw = served.client().embeddings.with_raw_response.create(model=served.model, input="hello there friend",
                                                              dimensions=4)
    answer = raw.parse()

    assert len(answer.data) == 1 and len(answer.data[0].embedding) == 4
    assert fake.requests()[-1]["path"] == f"/v1beta/models/{served.upstream_model}:batchEmbedContents"
    row = ledger_row(raw.headers["x-request-id"])
    assert row.usage_source == "estimated" and row.prompt_tokens == answer.usage.prompt_tokens > 0
    assert row.cost_usd == row.prompt_tokens * INPUT_PRICE / 1_000_000


def test_a_kind_without_embeddings_says_so_when_nothing_else_can_serve(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream
):
    served = _serve(gateway, fake, "anthropic")
    with pytest.raises(openai.BadRequestError) as caught:
        served.client().embeddings.create(model=served.model, input="hi")

    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "unsupported_by_provider"
    assert fake.requests() == []


def test_embeddings_fail_over_from_a_deployment_whose_kind_has_none(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream, fake_v1: str
):
    served = serve_kind(gateway, fake.base_url, "anthropic", max_retries=1)
    with transaction.atomic():
        embedder = make_provider(fake_v1)
        Deployment.objects.create(model=served.route.model, provider=embedder, priority=2,
                                  upstream_model="embedder", input_usd_per_mtok=INPUT_PRICE,
                                  output_usd_per_mtok=OUTPUT_PRICE)
    served.wait_for_provider(embedder.name)
    raw = served.client().embeddings.with_raw_response.create(model=served.model, input="hello there friend")

    assert len(raw.parse().data) == 1
    assert fake.requests()[-1]["body"]["model"] == "embedder"
    assert ledger_row(raw.headers["x-request-id"]).upstream_model == "embedder"


@pytest.mark.parametrize("kind", ["openai", "azure_openai"])
def test_a_legacy_completion_is_relayed_and_billed_exactly(kind: str, gateway: GatewayProcess,
                                                           fake: BackgroundFakeUpstream):
    served = _serve(gateway, fake, kind)
    raw = served.client().completions.with_raw_response.create(model=served.model, prompt="once upon a time")
    completion = raw.parse()

    assert completion.object == "text_completion" and completion.choices[0].text.startswith("Mock reply to:")
    usage = completion.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (4, 12)
    row = ledger_row(raw.headers["x-request-id"])
    assert row.endpoint == "completions" and row.usage_source == "provider"
    assert (row.prompt_tokens, row.completion_tokens) == (4, 12)
    assert row.cost_usd == (4 * INPUT_PRICE + 12 * OUTPUT_PRICE) / 1_000_000


def test_a_streamed_legacy_completion_is_billed_from_the_providers_usage(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream
):
    served = _serve(gateway, fake, "openai")
    raw = served.client().completions.with_raw_response.create(model=served.model, prompt="once upon a time",
                                                               stream=True)
    chunks = list(raw.parse())

    text = "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    assert len(text.split()) == 12 and all(chunk.usage is None for chunk in chunks)
    assert fake.requests()[-1]["body"]["stream_options"] == {"include_usage": True}
    row = ledger_row(raw.headers["x-request-id"])
    assert row.endpoint == "completions" and row.stream and row.usage_source == "provider"
    assert row.cost_usd == (4 * INPUT_PRICE + 12 * OUTPUT_PRICE) / 1_000_000


def test_a_legacy_completion_on_a_translated_kind_is_refused_clearly(
    gateway: GatewayProcess, fake: BackgroundFakeUpstream
):
    served = _serve(gateway, fake, "gemini")
    with pytest.raises(openai.BadRequestError) as caught:
        served.client().completions.create(model=served.model, prompt="hi")

    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "unsupported_by_provider"


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/embeddings", {"input": "x"}, "model"),
    ("/v1/embeddings", {"model": "m"}, "input"),
    ("/v1/embeddings", {"model": "m", "input": 3}, "input"),
    ("/v1/completions", {"model": "m"}, "prompt"),
    ("/v1/completions", {"model": "m", "prompt": "x", "stream": "yes"}, "stream"),
])
def test_malformed_requests_are_400s_naming_the_parameter(serve_with: Callable[..., Served], path: str,
                                                          body: dict[str, object], param: str):
    response = serve_with().post(body, path=path)

    assert response.status_code == 400 and response.json()["error"]["param"] == param
