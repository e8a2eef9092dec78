"""Under /v1/, every path the gateway does not serve, and every method a path does not take, is a JSON
error in the API family's shape, with DEBUG on or off; trailing-slash variants of endpoints are served.

Django with DEBUG on answers an unmatched URL with its technical 404 page (HTML, listing every URL
pattern), and CommonMiddleware's APPEND_SLASH would redirect a POST: an API client can read neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, serve

pytestmark = pytest.mark.usefixtures("live_db")
ANTHROPIC_BODY = {"max_tokens": 20, "messages": [{"role": "user", "content": "hello there friend"}]}


@pytest.fixture(scope="module")
def debug_gateway(django_db_setup: None, django_db_blocker: Any,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("debug-gateway")
    with django_db_blocker.unblock():
        process = GatewayProcess(spool_dir=directory / "spool", log_path=directory / "gateway.log",
                                 env={"DEBUG": "true"})
    with process:
        yield process


@pytest.fixture(params=["DEBUG off", "DEBUG on"])
def served(request: pytest.FixtureRequest, gateway: GatewayProcess, fake_v1: str) -> Served:
    chosen = gateway if request.param == "DEBUG off" else request.getfixturevalue("debug_gateway")
    return serve(chosen, fake_v1)


def call(served: Served, method: str, path: str, **options: Any) -> httpx.Response:
    return httpx.request(method, f"{served.gateway.url}{path}", headers=served.headers(), timeout=10,
                         follow_redirects=False, **options)


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json" and response.headers["x-request-id"]
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    return error


def anthropic_error(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json" and response.headers["x-request-id"]
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == error_type
    return str(body["error"]["message"])


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", [
    "/v1/nothing-here", "/v1/chat/completion", "/v1/chat/completions/extra", "/v1/chat/completions//",
    "/v1/", "/v1/engines/x/completions", "/v1/organization/../chat", "/v1/Chat/Completions",
])
def test_an_unknown_path_is_openais_json_404(served: Served, method: str, path: str):
    response = call(served, method, path, json={"model": served.model})

    error = openai_error(response, 404)
    assert error["code"] == "unknown_endpoint" and f"{method} /v1/" in error["message"]


@pytest.mark.parametrize("path", ["/v1/messages/batches", "/v1/messages/count_tokens/extra", "/v1/messages/x/"])
def test_an_unknown_path_under_messages_is_anthropics_json_404(served: Served, path: str):
    message = anthropic_error(call(served, "POST", path, json=ANTHROPIC_BODY), 404, "not_found_error")

    assert path in message


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/v1/chat/completions", "POST"), ("PUT", "/v1/chat/completions/", "POST"),
    ("GET", "/v1/embeddings", "POST"), ("DELETE", "/v1/models", "GET"), ("POST", "/v1/models/gpt-4o", "GET"),
])
def test_a_wrong_method_is_openais_json_405_saying_which_method_to_use(
    served: Served, method: str, path: str, allowed: str
):
    response = call(served, method, path)

    assert openai_error(response, 405)["code"] == "method_not_allowed"
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens", "/v1/messages/"])
def test_a_wrong_method_under_messages_is_anthropics_json_405(served: Served, path: str):
    response = call(served, "GET", path)

    anthropic_error(response, 405, "invalid_request_error")
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(("path", "body", "kind"), [
    ("/v1/chat/completions/", {"messages": [{"role": "user", "content": "hi"}]}, "chat.completion"),
    ("/v1/completions/", {"prompt": "hi"}, "text_completion"),
    ("/v1/embeddings/", {"input": "hi"}, "list"),
    ("/v1/messages/", ANTHROPIC_BODY, "message"),
    ("/v1/messages/count_tokens/", {"messages": ANTHROPIC_BODY["messages"]}, None),
])
def test_an_endpoint_with_a_trailing_slash_is_served_not_redirected(
    served: Served, path: str, body: dict[str, Any], kind: str | None
):
    response = call(served, "POST", path, json={"model": served.model, **body})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer.get("object", answer.get("type")) == kind if kind else isinstance(answer["input_tokens"], int)
