"""/v1/messages carries structured outputs written either way Anthropic's API has taken them."""

from __future__ import annotations

import pytest

from apps.proxy.anthropic_inbound.request import chat_request

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.mark.parametrize("form", [
    {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
    {"output_format": {"type": "json_schema", "schema": SCHEMA}},  # the structured-outputs beta, older SDKs
])
def test_a_json_schema_output_becomes_the_chat_response_format(form):
    translated = chat_request({"model": "m", "max_tokens": 5, "messages": HELLO, **form}).body

    assert translated["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}
