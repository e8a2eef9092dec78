"""How a provider is named in traces: OpenTelemetry's GenAI semantic conventions.

``gen_ai.provider.name`` takes the convention's well-known values (``openai``, ``anthropic``,
``azure.ai.openai``, ``gcp.gemini``, ``groq``, …); an OpenAI-compatible upstream is recognised by its host where
the convention names it, and is otherwise named by our kind, as the convention allows for others.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from apps.providers.contracts import Upstream

PROVIDER_NAMES = {  # our kind → the convention's value
    "openai": "openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
}
COMPATIBLE_HOSTS = {  # an openai_compatible upstream the convention knows, by host
    "api.groq.com": "groq",
    "api.mistral.ai": "mistral_ai",
    "api.deepseek.com": "deepseek",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.cohere.com": "cohere",
    "api.openai.com": "openai",
}
DEFAULT_PORTS = {"https": 443, "http": 80}


@lru_cache(maxsize=1024)
def _server(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 443)


def provider_name(upstream: Upstream) -> str:
    if upstream.kind == "openai_compatible":
        return COMPATIBLE_HOSTS.get(_server(upstream.base_url)[0], upstream.kind)
    return PROVIDER_NAMES.get(upstream.kind, upstream.kind)


def call_attributes(upstream: Upstream, operation: str, model: str) -> dict[str, Any]:
    """The GenAI attributes of one call to ``upstream``: no prompt, no answer, no credentials."""
    host, port = _server(upstream.base_url)
    return {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider_name(upstream),
        "gen_ai.request.model": model,
        "server.address": host,
        "server.port": port,
    }
