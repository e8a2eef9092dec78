"""Azure OpenAI (``kind: azure_openai``): OpenAI's wire format at deployment URLs."""

from __future__ import annotations

from urllib.parse import quote

from apps.providers.adapters.openai import OpenAIWireAdapter
from apps.providers.contracts import StreamEvent


class AzureOpenAIAdapter(OpenAIWireAdapter):
    """Azure OpenAI: one URL per deployment (the upstream model), ``api-version`` and an ``api-key`` header.

    ``base_url`` is the resource, e.g. ``https://my-resource.openai.azure.com``.
    """

    kind = "azure_openai"
    default_api_version = "2024-10-21"  # the current GA data-plane version

    def path(self, endpoint: str, upstream_model: str) -> str:
        version = quote(self.upstream.api_version or self.default_api_version, safe="")
        return f"/openai/deployments/{quote(upstream_model, safe='')}/{endpoint}?api-version={version}"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self.upstream.headers}
        if self.upstream.api_key:
            headers["api-key"] = self.upstream.api_key
        return headers

    def chunk_event(self, frame: bytes) -> StreamEvent | None:
        # Azure opens a stream with a chunk that holds only its prompt filter results, with an empty
        # "object": not an OpenAI chunk, and nothing a client needs; strict parsers reject it.
        event = super().chunk_event(frame)
        if event is not None and b"prompt_filter_results" in frame and b'"object":""' in frame.replace(b" ", b""):
            return None
        return event
