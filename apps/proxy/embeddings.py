"""``POST /v1/embeddings``: input tokens at the input price, and no output to reserve.

Deployments whose provider kind has no embeddings answer with a retryable error, so routing moves
on to one that has.
"""

from __future__ import annotations

from django.http import HttpRequest

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import ChatResponse, EmbeddingsRequest, Usage
from apps.providers.tokens import estimate_input_usage
from apps.proxy.endpoint import Endpoint
from apps.proxy.parsing import parse_embeddings_request
from apps.routing.table import Target


class Embeddings(Endpoint[EmbeddingsRequest]):
    name = "embeddings"
    generates_output = False

    def parse(self, request: HttpRequest) -> EmbeddingsRequest:
        return parse_embeddings_request(request)

    async def answer(self, call: EmbeddingsRequest, adapter: ProviderAdapter, target: Target) -> ChatResponse:
        return await adapter.embeddings(call, upstream_model=target.upstream_model)

    def estimate(self, call: EmbeddingsRequest, content: bytes) -> Usage:
        return estimate_input_usage(call.body.get("input"))
