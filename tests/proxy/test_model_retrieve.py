"""``GET /v1/models/{id}`` through the official openai SDK: the model object, or OpenAI's 404."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest

from tests.factories import make_route, unique
from tests.harness.gateway import GatewayProcess
from tests.harness.served import ledger_row, serve
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.usefixtures("live_db")


def test_the_sdk_retrieves_a_model_the_key_may_use(gateway: GatewayProcess, fake_v1: str):
    served = serve(gateway, fake_v1)

    raw = served.client().models.with_raw_response.retrieve(served.model)
    model = raw.parse()

    assert (model.id, model.object, model.owned_by) == (served.model, "model", "llm-edge")
    assert model.created == int(served.route.model.created_at.timestamp())
    row = ledger_row(raw.headers["x-request-id"])
    assert (row.endpoint, row.public_model, row.status, row.cost_usd) == ("models", served.model, "ok", Decimal(0))


def test_a_model_the_key_may_not_use_is_not_found_like_one_that_does_not_exist(gateway: GatewayProcess, fake_v1: str):
    allowed, forbidden_model = serve(gateway, fake_v1), serve(gateway, fake_v1).model
    _, raw_key = allowed.another_key(allowed_models=[allowed.model])
    client = allowed.client(api_key=raw_key)

    with pytest.raises(openai.NotFoundError) as forbidden:
        client.models.retrieve(forbidden_model)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.models.retrieve(unique("no-such-model"))

    for raised in (forbidden.value, unknown.value):
        assert raised.status_code == 404 and raised.code == "model_not_found" and raised.param == "model"
        assert raised.type == "invalid_request_error" and "does not exist or you do not have access" in raised.message
    assert client.models.retrieve(allowed.model).id == allowed.model


def test_an_id_with_slashes_is_one_model(gateway: GatewayProcess, fake_v1: str):
    name = f"meta-llama/{unique('Llama-3-8B')}"  # the SDK sends it as meta-llama%2F…
    served = serve(gateway, fake_v1, name=name)

    model = served.client().models.retrieve(name)
    by_hand = httpx.get(f"{gateway.url}/v1/models/{name}", headers=served.headers())  # unescaped slash

    assert model.id == name and by_hand.json()["id"] == name


def test_a_name_a_pattern_route_serves_is_found_as_chat_would_find_it(gateway: GatewayProcess, fake_v1: str):
    prefix = unique("family")
    make_route(fake_v1, name=f"{prefix}-*", upstream_model="*")
    served = serve(gateway, fake_v1)
    wait_until(lambda: httpx.get(f"{gateway.url}/v1/models/{prefix}-large", headers=served.headers()).status_code
               == 200, what="the pattern route served")

    assert served.client().models.retrieve(f"{prefix}-large").id == f"{prefix}-large"


def test_a_trailing_slash_is_served_too(gateway: GatewayProcess, fake_v1: str):
    served = serve(gateway, fake_v1)

    one = httpx.get(f"{gateway.url}/v1/models/{served.model}/", headers=served.headers())
    listed = httpx.get(f"{gateway.url}/v1/models/", headers=served.headers())

    assert one.status_code == 200 and one.json()["id"] == served.model
    assert listed.status_code == 200 and served.model in [model["id"] for model in listed.json()["data"]]


def test_without_a_key_it_is_openais_401(gateway: GatewayProcess, fake_v1: str):
    served = serve(gateway, fake_v1)

    with pytest.raises(openai.AuthenticationError):
        served.client(api_key="sk-edge-wrong").models.retrieve(served.model)
