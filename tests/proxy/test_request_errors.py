"""Requests the gateway refuses itself: always OpenAI's JSON error body, the status OpenAI would use,
the offending parameter named, and an x-request-id that matches the ledger row."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import orjson
import pytest

from tests.harness.gateway import GatewayProcess
from tests.harness.served import CHAT_PATH, Served, ledger_row, serve
from tests.proxy.conftest import SMALL_BODY_BYTES

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture(scope="module")
def served(module_serve_with: Callable[..., Served]) -> Served:
    return module_serve_with()


def assert_openai_error(response: httpx.Response, status: int, **expected: Any) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert {name: error[name] for name in expected} == expected
    return error


@pytest.mark.parametrize(
    ("content", "content_type", "code"),
    [
        (b'{"model": "m", "messages": [', "application/json", "invalid_json"),
        (b"", "application/json", "empty_body"),
        (b'{"model": "m", "messages": []}', "text/plain", "unsupported_content_type"),
        (b"model=m&messages=hi", "application/x-www-form-urlencoded", "unsupported_content_type"),
        (b'[{"model": "m"}]', "application/json", "invalid_json"),
        (b'"a string"', "application/json", "invalid_json"),
    ],
)
def test_it_refuses_a_body_that_is_not_a_json_object(served: Served, content: bytes, content_type: str, code: str):
    response = served.post(content=content, headers=served.headers(**{"Content-Type": content_type}))

    assert_openai_error(response, 400, code=code, param=None, type="invalid_request_error")


def test_it_accepts_json_that_names_its_charset(served: Served):
    headers = served.headers(**{"Content-Type": "application/json; charset=utf-8"})

    response = served.post(content=orjson.dumps(served.chat_body()), headers=headers)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("change", "param", "code"),
    [
        ({"model": None}, "model", "missing_required_parameter"),
        ({"messages": None}, "messages", "missing_required_parameter"),
        ({"model": 42}, "model", "invalid_type"),
        ({"model": ""}, "model", "invalid_type"),
        ({"messages": "hi"}, "messages", "invalid_type"),
        ({"messages": []}, "messages", "invalid_type"),
        ({"messages": ["hi"]}, "messages[0]", "invalid_type"),
        ({"messages": [{"role": 1, "content": "hi"}]}, "messages[0].role", "invalid_type"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role", "invalid_type"),
        ({"stream": "yes"}, "stream", "invalid_type"),
        ({"stream": True, "stream_options": "usage"}, "stream_options", "invalid_type"),
        ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", "invalid_type"),
    ],
)
def test_it_names_the_parameter_that_is_missing_or_of_the_wrong_type(
    served: Served, fake, change: dict[str, Any], param: str, code: str
):
    body = {key: value for key, value in {**served.chat_body(), **change}.items() if value is not None}

    response = served.post(body)

    assert_openai_error(response, 400, param=param, code=code, type="invalid_request_error")
    row = ledger_row(response.headers["x-request-id"])
    assert (row.status, row.http_status, row.error_type) == ("error", 400, code)
    assert fake.stats()["requests"] == 0


@pytest.mark.parametrize(
    "path", ["/v1/nothing-here", "/v1/chat/completions/extra", "/v1/", "/v1/engines/x/completions"]
)
def test_it_answers_an_unknown_api_path_with_a_json_404(served: Served, path: str):
    response = httpx.post(f"{served.gateway.url}{path}", json=served.chat_body(), headers=served.headers())

    assert_openai_error(response, 404, type="invalid_request_error")
    assert response.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", CHAT_PATH), ("PUT", CHAT_PATH), ("DELETE", CHAT_PATH), ("PATCH", CHAT_PATH), ("OPTIONS", CHAT_PATH),
     ("POST", "/v1/models"), ("DELETE", "/v1/models")],
)
def test_it_answers_a_wrong_method_with_a_json_405(served: Served, method: str, path: str):
    response = httpx.request(method, f"{served.gateway.url}{path}", headers=served.headers())

    assert_openai_error(response, 405, code="method_not_allowed")
    assert response.headers["x-request-id"].startswith("req_")


# --- Bodies over EDGE_MAX_BODY_BYTES: refused by the ASGI middleware, before the body is read -------


def exchange_raw(gateway: GatewayProcess, head: bytes, body_parts: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    """Send a request head and some body bytes, never finishing the body; return the response."""
    address = urlsplit(gateway.url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        received = b""
        while b"\r\n\r\n" not in received or not _complete(received):
            data = sock.recv(65536)
            if not data:
                break
            received += data
    head_text, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head_text.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.decode().split("\r\n"):
        if line.lower().startswith("content-length:"):
            return len(body) >= int(line.split(":")[1])
    return False


def request_head(served: Served, *framing: str) -> bytes:
    lines = [f"POST {CHAT_PATH} HTTP/1.1", f"Host: {urlsplit(served.gateway.url).netloc}",
             f"Authorization: Bearer {served.raw_key}", "Content-Type: application/json", *framing]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture
def limited(limited_gateway: GatewayProcess, fake_v1: str) -> Served:
    return serve(limited_gateway, fake_v1)


def test_it_refuses_a_declared_oversized_body_without_reading_it(limited: Served):
    head = request_head(limited, "Content-Length: 1000000000")  # a gigabyte that is never sent

    status, headers, body = exchange_raw(limited.gateway, head, [b'{"model": '])

    assert status == 413 and headers["content-type"] == "application/json"
    assert orjson.loads(body)["error"]["code"] == "request_too_large"
    assert headers["x-request-id"].startswith("req_")


def test_it_cuts_off_a_chunked_body_once_it_grows_past_the_limit(limited: Served):
    head = request_head(limited, "Transfer-Encoding: chunked")
    piece = b"x" * (SMALL_BODY_BYTES // 2 + 1)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"

    # Two chunks cross the limit; the body is never terminated, so only the limit can end the request.
    status, headers, body = exchange_raw(limited.gateway, head, [chunk, chunk])

    assert status == 413 and headers["content-type"] == "application/json"
    assert orjson.loads(body)["error"]["code"] == "request_too_large"


def test_it_accepts_a_body_just_under_the_limit(limited: Served):
    padding = "word " * ((SMALL_BODY_BYTES - 300) // 5)
    body = limited.chat_body(padding)
    assert len(orjson.dumps(body)) < SMALL_BODY_BYTES

    assert limited.post(body).status_code == 200


def test_it_refuses_an_oversized_body_from_the_sdk_as_a_413(limited: Served):
    with pytest.raises(openai.APIStatusError) as raised:
        limited.client().chat.completions.create(
            model=limited.model, messages=[{"role": "user", "content": "x" * SMALL_BODY_BYTES}]
        )

    assert raised.value.status_code == 413
