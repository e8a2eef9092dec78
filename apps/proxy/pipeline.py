"""The steps of a chat completion after authentication: route, cache, call, account.

Read ``chat_completion()`` top to bottom to follow a request; each step lives in the module its
name suggests, and every failure is an ``OpenAIError`` that the view's funnel turns into a response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import KeyInfo
from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import ChatRequest, ChatResponse, ChatStream
from apps.providers.tokens import estimate_completion_usage
from apps.proxy.cache.service import answer_from_cache, look_up_cache
from apps.proxy.errors import ModelNotFound, NoDeployment
from apps.proxy.exchange import Exchange
from apps.proxy.parsing import parse_chat_request
from apps.proxy.streaming import streaming_response
from apps.routing.attempts import attempt_in_order
from apps.routing.table import ModelRoute, Target, routing_tables

T = TypeVar("T")


async def chat_completion(request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
    chat = parse_chat_request(request)
    exchange.model, exchange.stream = chat.model, chat.stream
    route = await choose_route(key, chat.model)
    cache = await look_up_cache(request, route, chat, exchange)
    if cache.hit is not None:
        return answer_from_cache(exchange, chat, cache.hit)
    if chat.stream:
        stream = await open_stream(route, chat, exchange)
        return streaming_response(exchange, chat, stream, cache)
    answer = await complete(route, chat, exchange)
    exchange.usage = (
        answer.usage if answer.usage.source == "provider" else estimate_completion_usage(chat.body, answer.content)
    )
    exchange.finish(status="ok", http_status=200)
    cache.store(answer.content, exchange)
    return HttpResponse(answer.content, content_type="application/json")


async def choose_route(key: KeyInfo, model: str) -> ModelRoute:
    table = await routing_tables.current()
    route = table.routes.get(model)
    if route is None or not key.may_use(model):
        raise ModelNotFound(model)
    if not route.targets:
        raise NoDeployment(f"No provider is currently available for model `{model}`.")
    return route


async def complete(route: ModelRoute, chat: ChatRequest, exchange: Exchange) -> ChatResponse:
    async def call(adapter: ProviderAdapter, target: Target) -> ChatResponse:
        return await adapter.chat(chat, upstream_model=target.upstream_model)

    _, answer = await attempt_in_order(route, call, exchange.attempts)
    return answer


async def open_stream(route: ModelRoute, chat: ChatRequest, exchange: Exchange) -> ChatStream:
    async def call(adapter: ProviderAdapter, target: Target) -> ChatStream:
        return await adapter.open_stream(chat, upstream_model=target.upstream_model)

    _, stream = await attempt_in_order(route, call, exchange.attempts)
    return stream


async def call_route(
    route: ModelRoute, exchange: Exchange, call: Callable[[ProviderAdapter, Target], Awaitable[T]]
) -> T:
    """``complete()``'s attempt loop for any adapter call: embeddings, legacy completions and streams."""
    _, result = await attempt_in_order(route, call, exchange.attempts)
    return result
