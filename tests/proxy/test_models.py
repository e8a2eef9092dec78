"""GET /v1/models: the models a key may use, in OpenAI's list format."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.harness.served import Served

pytestmark = pytest.mark.usefixtures("live_db")


def test_it_lists_only_the_models_the_key_may_use(serve_with: Callable[..., Served], served: Served):
    other = serve_with()
    _, raw_key = served.another_key(allowed_models=[served.model])
    client = served.client(api_key=raw_key)

    listed = [model.id for model in client.models.list()]

    assert listed == [served.model]
    assert other.model not in listed


def test_it_lists_every_model_for_a_key_without_an_allowlist(serve_with: Callable[..., Served]):
    first, second = serve_with(), serve_with()

    listed = {model.id for model in first.client().models.list()}

    assert {first.model, second.model} <= listed


def test_it_answers_in_openais_list_format(served: Served):
    _, raw_key = served.another_key(allowed_models=[served.model])

    response = httpx.get(f"{served.gateway.url}/v1/models", headers={"Authorization": f"Bearer {raw_key}"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "list"
    [model] = body["data"]
    assert model == {"id": served.model, "object": "model", "created": model["created"], "owned_by": "llm-edge"}
    assert isinstance(model["created"], int) and model["created"] > 1_700_000_000
