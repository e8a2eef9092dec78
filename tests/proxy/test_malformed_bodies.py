"""Bodies the gateway accepts as JSON but that hold a parameter of the wrong type where a translation
reads it: each is the client's 400 (OpenAI's shape on /v1/chat/completions, Anthropic's on
/v1/messages), recorded as such in the ledger, and never a 500 that reads like a gateway bug."""

from __future__ import annotations

from typing import Any

import pytest

from apps.providers.fake_upstream import BackgroundFakeUpstream
from tests.harness.gateway import GatewayProcess
from tests.harness.served import Served, ledger_row, serve_kind

pytestmark = pytest.mark.usefixtures("live_db")
HELLO = {"role": "user", "content": "hello"}
# (what is wrong, the body's parameters, the param the error names: None where no reader foresaw it)
CHAT_BODIES: list[tuple[str, dict[str, Any], str | None]] = [
    ("image_url as a string", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": "https://example.com/a.png"}]}]}, "messages[0].content[0].image_url"),
    ("a tool call's function as a string", {"messages": [HELLO, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": "get_weather"}]}]}, "messages[1].tool_calls[0].function"),
    ("a tool's function as a string", {"messages": [HELLO], "tools": [{"type": "function", "function": "f"}]},
     "tools[0].function"),
    ("stop as a number", {"messages": [HELLO], "stop": 5}, "stop"),
    ("response_format as a string", {"messages": [HELLO], "response_format": "json"}, "response_format"),
    ("content as a number", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ("a text part's text as a number", {"messages": [{"role": "system", "content": [{"type": "text", "text": 5}]},
                                                     HELLO]}, None),
]
MESSAGES_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("metadata as a list", {"metadata": ["u1"]}, "metadata"),
    ("output_config as a string", {"output_config": "json"}, "output_config"),
    ("output_config.format as a string", {"output_config": {"format": "json"}}, "output_config.format"),
    ("an image source as a string", {"messages": [{"role": "user", "content": [
        {"type": "image", "source": "https://example.com/a.png"}]}]}, "messages.0.content.0.source"),
    ("content as a number", {"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ("a content block as a string", {"messages": [{"role": "user", "content": ["hi"]}]}, "messages.0.content.0"),
    ("a text block's text as a number", {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
     "messages.0.content.0.text"),
    ("a tool result's text as a number", {"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": 5}]}]}]},
     "messages.0.content.0.content.0.text"),
    ("system blocks' text as a number", {"system": [{"type": "text", "text": 5}]}, "system.0.text"),
    ("stop_sequences as a string", {"stop_sequences": "END"}, "stop_sequences"),
]


@pytest.fixture(params=["anthropic", "gemini"], scope="module")
def translated(request: pytest.FixtureRequest, gateway: GatewayProcess, fake_upstream: BackgroundFakeUpstream,
               django_db_blocker: Any) -> Served:
    with django_db_blocker.unblock():
        return serve_kind(gateway, fake_upstream.base_url, request.param)


@pytest.mark.parametrize(("wrong", "params", "param"), CHAT_BODIES, ids=[row[0] for row in CHAT_BODIES])
def test_it_answers_a_body_its_provider_cannot_be_sent_with_a_400_naming_the_parameter(
    translated: Served, wrong: str, params: dict[str, Any], param: str | None
):
    response = translated.post({"model": translated.model, **params})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert error["code"] == "invalid_type" and (param is None or param in error["message"])
    row = ledger_row(response.headers["x-request-id"])
    assert (row.status, row.http_status, row.error_type) == ("error", 400, "invalid_type")


@pytest.fixture(scope="module")
def messages_served(gateway: GatewayProcess, fake_upstream: BackgroundFakeUpstream, django_db_blocker: Any) -> Served:
    with django_db_blocker.unblock():
        return serve_kind(gateway, fake_upstream.base_url, "gemini")


@pytest.mark.parametrize(("wrong", "params", "param"), MESSAGES_BODIES, ids=[row[0] for row in MESSAGES_BODIES])
def test_it_answers_a_messages_body_of_the_wrong_types_with_anthropics_400(
    messages_served: Served, wrong: str, params: dict[str, Any], param: str
):
    body = {"model": messages_served.model, "max_tokens": 10, "messages": [HELLO], **params}

    response = messages_served.post(body, path="/v1/messages")

    assert response.status_code == 400, response.text
    assert response.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": response.json()["error"]["message"]}}
    assert response.json()["error"]["message"].startswith(f"{param}: Input should be a valid")
    row = ledger_row(response.headers["x-request-id"])
    assert (row.status, row.http_status) == ("error", 400)
