"""Providers as OpenTelemetry's GenAI conventions name them in spans."""

from __future__ import annotations

import pytest

from apps.providers.contracts import Upstream
from apps.providers.semconv import call_attributes, provider_name


def upstream(kind: str, base_url: str) -> Upstream:
    return Upstream(provider_id=1, provider_name="ours", kind=kind, base_url=base_url, api_key="sk-secret",
                    headers={}, timeout_s=30)


@pytest.mark.parametrize(("kind", "base_url", "name"), [
    ("openai", "https://api.openai.com/v1", "openai"),
    ("anthropic", "https://api.anthropic.com", "anthropic"),
    ("azure_openai", "https://acme.openai.azure.com/openai", "azure.ai.openai"),
    ("gemini", "https://generativelanguage.googleapis.com/v1beta", "gcp.gemini"),
    ("openai_compatible", "https://api.groq.com/openai/v1", "groq"),
    ("openai_compatible", "https://api.mistral.ai/v1", "mistral_ai"),
    ("openai_compatible", "http://vllm.internal:8000/v1", "openai_compatible"),
])
def test_each_kind_gets_the_conventions_provider_name(kind: str, base_url: str, name: str):
    assert provider_name(upstream(kind, base_url)) == name


def test_a_calls_attributes_name_the_server_and_never_the_key():
    attributes = call_attributes(upstream("openai_compatible", "http://vllm.internal:8000/v1"), "chat", "llama-3")

    assert attributes == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai_compatible",
                          "gen_ai.request.model": "llama-3", "server.address": "vllm.internal", "server.port": 8000}
    assert call_attributes(upstream("openai", "https://api.openai.com/v1"), "chat", "m")["server.port"] == 443
