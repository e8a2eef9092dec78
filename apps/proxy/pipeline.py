"""The steps of a chat completion after authentication: route, cache, call, account.

Read ``chat_completion()`` top to bottom to follow a request; each step lives in the module its
name suggests, and every failure is an ``OpenAIError`` that the view's funnel turns into a response.
The other endpoints (embeddings, legacy completions, /v1/messages) reuse ``choose_route()`` and the
two attempt loops at the bottom: ``call_route()`` for whole answers, ``stream_route()`` for streams.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import KeyInfo
from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import ChatRequest, ChatResponse, ChatStream
from apps.providers.errors import ProviderError
from apps.providers.tokens import estimate_completion_usage, usage_or_estimate
from apps.proxy.cache.service import answer_from_cache, look_up_cache
from apps.proxy.errors import ModelNotFound, NoDeployment
from apps.proxy.exchange import Exchange
from apps.proxy.parsing import parse_chat_request
from apps.proxy.streaming import streaming_response
from apps.routing.attempts import attempt_in_order, record_late_failure
from apps.routing.shared_state import shared_state
from apps.routing.strategies import RequestShape
from apps.routing.streams import open_relayable
from apps.routing.table import ModelRoute, Target, routing_tables

T = TypeVar("T")
Call = Callable[[ProviderAdapter, Target], Awaitable[T]]
SHAPED_STRATEGIES = {"cost", "hybrid"}  # the only ones that read token estimates


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
    exchange.usage = usage_or_estimate(answer.usage, lambda: estimate_completion_usage(chat.body, answer.content))
    exchange.finish(status="ok", http_status=200)
    cache.store(answer.content, exchange)
    return HttpResponse(answer.content, content_type="application/json")


async def choose_route(key: KeyInfo, model: str) -> ModelRoute:
    table = await routing_tables.current()
    shared_state.ensure_syncing(routing_tables.deployment_ids)
    route = table.find(model)
    # A key may be allowed a pattern (claude-*): then every name the pattern serves is allowed.
    if route is None or not (key.may_use(model) or key.may_use(route.key)):
        raise ModelNotFound(model)
    if not route.targets:
        raise NoDeployment(f"No provider is currently available for model `{model}`.")
    return route


async def complete(route: ModelRoute, chat: ChatRequest, exchange: Exchange) -> ChatResponse:
    async def call(adapter: ProviderAdapter, target: Target) -> ChatResponse:
        return await adapter.chat(chat, upstream_model=target.upstream_model)

    return await call_route(route, exchange, call, request_shape(route, chat.body))


async def open_stream(route: ModelRoute, chat: ChatRequest, exchange: Exchange) -> ChatStream:
    def opening(adapter: ProviderAdapter, target: Target) -> Awaitable[ChatStream]:
        return adapter.open_stream(chat, upstream_model=target.upstream_model)

    return await stream_route(route, exchange, opening, request_shape(route, chat.body))


async def call_route(route: ModelRoute, exchange: Exchange, call: Call[T], shape: RequestShape | None = None) -> T:
    """The attempt loop for any adapter call that returns a whole answer."""
    exchange.strategy = route.strategy
    _, answer = await attempt_in_order(route, call, exchange.attempts, shape or RequestShape(),
                                       waited_s=exchange.flight_wait_ms / 1000)
    return answer


async def stream_route(
    route: ModelRoute, exchange: Exchange, opening: Call[ChatStream], shape: RequestShape | None = None
) -> ChatStream:
    """The attempt loop for a stream: it fails over until the stream has begun (``open_relayable``)."""

    async def call(adapter: ProviderAdapter, target: Target) -> ChatStream:
        owner = route.route_of(target)  # a fallback's deployment keeps its own policy's bounds and breaker

        async def late_failure(error: ProviderError) -> None:
            await record_late_failure(owner, target, error)

        return await open_relayable(opening(adapter, target), target, owner.policy, late_failure)

    exchange.strategy = route.strategy
    _, stream = await attempt_in_order(route, call, exchange.attempts, shape or RequestShape(), stream=True,
                                       waited_s=exchange.flight_wait_ms / 1000)
    return stream


def request_shape(route: ModelRoute, body: Mapping[str, Any], *, output: bool = True) -> RequestShape | None:
    """Token estimates for cost and hybrid (None for the strategies that read none). ``output=False``
    for requests answered without generated tokens (embeddings)."""
    if route.strategy not in SHAPED_STRATEGIES:
        return None
    shape = RequestShape.of(body, len(orjson.dumps(body)))
    return shape if output else dataclasses.replace(shape, output_tokens=0)
