"""Provider kinds → adapter classes, by dotted path so an adapter is imported only when used.

Adding a provider: write its adapter class, add its kind here (see docs/adding-a-provider.md).
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import Upstream

ADAPTERS: dict[str, str] = {
    "openai": "apps.providers.adapters.openai.OpenAIAdapter",
    "openai_compatible": "apps.providers.adapters.openai.OpenAICompatibleAdapter",
    "azure_openai": "apps.providers.adapters.azure.AzureOpenAIAdapter",
    "anthropic": "apps.providers.adapters.anthropic.AnthropicAdapter",
    "gemini": "apps.providers.adapters.gemini.GeminiAdapter",
}

KIND_LABELS: dict[str, str] = {
    "openai": "OpenAI",
    "openai_compatible": "OpenAI-compatible (vLLM, Ollama, Groq, …)",
    "azure_openai": "Azure OpenAI",
    "anthropic": "Anthropic",
    "gemini": "Google Gemini",
}

_classes: dict[str, type[ProviderAdapter]] = {}


def kind_choices() -> list[tuple[str, str]]:
    return [(kind, KIND_LABELS.get(kind, kind)) for kind in ADAPTERS]


def adapter_for(upstream: Upstream) -> ProviderAdapter:
    adapter_class = _classes.get(upstream.kind)
    if adapter_class is None:
        adapter_class = _classes[upstream.kind] = import_string(ADAPTERS[upstream.kind])
    return adapter_class(upstream)
