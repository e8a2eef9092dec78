"""``POST /v1/embeddings``: routed, accounted and priced like chat (input tokens at the input price).

Deployments whose provider kind has no embeddings answer with a retryable error, so routing moves
on to one that has.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import KeyInfo
from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import ChatResponse
from apps.providers.tokens import estimate_input_usage, usage_or_estimate
from apps.proxy.exchange import Exchange
from apps.proxy.parsing import parse_embeddings_request
from apps.proxy.pipeline import call_route, choose_route, request_shape
from apps.proxy.views import GatewayView
from apps.routing.table import Target


async def create_embeddings(request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
    embeddings = parse_embeddings_request(request)
    exchange.model = embeddings.model
    route = await choose_route(key, embeddings.model)

    async def call(adapter: ProviderAdapter, target: Target) -> ChatResponse:
        return await adapter.embeddings(embeddings, upstream_model=target.upstream_model)

    answer = await call_route(route, exchange, call, request_shape(route, embeddings.body, output=False))
    exchange.usage = usage_or_estimate(answer.usage, lambda: estimate_input_usage(embeddings.body["input"]))
    exchange.finish(status="ok", http_status=200)
    return HttpResponse(answer.content, content_type="application/json")


class EmbeddingsView(GatewayView):
    endpoint = "embeddings"

    async def post(self, request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
        return await create_embeddings(request, exchange, key)
