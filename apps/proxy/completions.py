"""``POST /v1/completions``, OpenAI's legacy text completions, for OpenAI-wire upstreams.

Routed, streamed, accounted and priced exactly like chat; deployments on providers that have no
legacy endpoint (Anthropic, Gemini) fail over with a retryable error.
"""

from __future__ import annotations

from collections.abc import Awaitable

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import KeyInfo
from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import ChatResponse, ChatStream
from apps.providers.tokens import estimate_completion_usage, usage_or_estimate
from apps.proxy.exchange import Exchange
from apps.proxy.parsing import parse_completion_request
from apps.proxy.pipeline import call_route, choose_route, request_shape, stream_route
from apps.proxy.streaming import streaming_response
from apps.proxy.views import GatewayView
from apps.routing.table import Target


async def create_completion(request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
    completion = parse_completion_request(request)
    exchange.model, exchange.stream = completion.model, completion.stream
    route = await choose_route(key, completion.model)
    shape = request_shape(route, completion.body)
    if completion.stream:

        def opening(adapter: ProviderAdapter, target: Target) -> Awaitable[ChatStream]:
            return adapter.open_completion_stream(completion, upstream_model=target.upstream_model)

        return streaming_response(exchange, completion, await stream_route(route, exchange, opening, shape))

    async def complete(adapter: ProviderAdapter, target: Target) -> ChatResponse:
        return await adapter.completions(completion, upstream_model=target.upstream_model)

    answer = await call_route(route, exchange, complete, shape)
    exchange.usage = usage_or_estimate(answer.usage, lambda: estimate_completion_usage(completion.body, answer.content))
    exchange.finish(status="ok", http_status=200)
    return HttpResponse(answer.content, content_type="application/json")


class CompletionsView(GatewayView):
    endpoint = "completions"

    async def post(self, request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
        return await create_completion(request, exchange, key)
