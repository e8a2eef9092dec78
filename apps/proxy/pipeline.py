"""The request pipeline: the steps every ``/v1/`` endpoint runs, in order, once each.

Read ``serve()`` top to bottom to follow a request; each step lives in the module its name says.
An endpoint (``apps.proxy.endpoint``) supplies only what differs: parsing, its adapter calls, its
usage estimates and error shapes, and whether it may be cached. Authentication happens before
``serve()`` and every failure after it ends in the view's one funnel (``apps.proxy.views``), which
settles the request too: whatever ends a request, step 6 runs exactly once.

    1 authenticate   (the view)                          apps.proxy.auth
    2 parse          endpoint.parse(), .prepare()         apps.proxy.parsing
      replay         a repeated Idempotency-Key           apps.proxy.replays
    3 admit          limits and budgets                   apps.proxy.admission
    4 cache          L1 → L2 (chat completions)           apps.proxy.cache
    5 route + call   strategy, breakers, failover         apps.routing
    6 settle         usage → cost → ledger row, release;  apps.proxy.exchange (Exchange.finish)
                     metrics, log line, span
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import orjson
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import KeyInfo
from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import ChatStream
from apps.providers.errors import ProviderError
from apps.proxy.admission import admit, insist_on_budget
from apps.proxy.cache.service import NO_CACHE, answer_from_cache, look_up_cache
from apps.proxy.endpoint import Endpoint, R
from apps.proxy.errors import ModelNotFound, NoDeployment
from apps.proxy.exchange import Exchange
from apps.proxy.replays import replay_if_repeated
from apps.proxy.streaming import streaming_response
from apps.routing.attempts import attempt_in_order, record_late_failure
from apps.routing.shared_state import shared_state
from apps.routing.strategies import RequestShape
from apps.routing.streams import open_relayable
from apps.routing.table import ModelRoute, RoutingTable, Target, routing_tables
from edge_project.tracing import traced

T = TypeVar("T")
Call = Callable[[ProviderAdapter, Target], Awaitable[T]]
SHAPED_STRATEGIES = {"cost", "hybrid"}  # the only ones that read token estimates


async def serve(request: HttpRequest, exchange: Exchange, endpoint: Endpoint[R]) -> HttpResponseBase:
    call = await endpoint.prepare(endpoint.parse(request), exchange)
    exchange.model, exchange.stream = call.model, call.stream
    route = await choose_route(exchange.key, call.model)
    exchange.route = route.key
    if (replay := await replay_if_repeated(request, exchange, route)) is not None:
        return replay
    await admit(request, exchange, route, call, endpoint)
    cache = await look_up_cache(request, route, call, exchange) if endpoint.cacheable else NO_CACHE
    if cache.hit is not None:
        return answer_from_cache(exchange, call, cache.hit)
    insist_on_budget(exchange)
    shape = request_shape(route, call.body, output=endpoint.generates_output)
    if call.stream:
        stream = await stream_route(route, exchange, partial(endpoint.open_stream, call), shape)
        return streaming_response(exchange, endpoint, call, stream, cache)
    answer = await call_route(route, exchange, partial(endpoint.answer, call), shape)
    exchange.account(answer.usage, lambda: endpoint.estimate(call, answer.content))
    exchange.finish(status="ok", http_status=200)
    cache.store(answer.content, exchange)
    return HttpResponse(answer.content, content_type="application/json")


@traced("edge.route")
async def choose_route(key: KeyInfo | None, model: str) -> ModelRoute:
    table = await routing_tables.current()
    shared_state.ensure_syncing(routing_tables.deployment_ids)
    route = permitted_route(table, key, model)
    if not route.targets:
        raise NoDeployment(f"No provider is currently available for model `{model}`.")
    return route


def permitted_route(table: RoutingTable, key: KeyInfo | None, model: str) -> ModelRoute:
    """The route serving ``model`` if this key may use it; one answer (404) for unknown and forbidden."""
    route = table.find(model)
    # A key may be allowed a pattern (claude-*): then every name the pattern serves is allowed.
    if route is None or key is None or not (key.may_use(model) or key.may_use(route.key)):
        raise ModelNotFound(model)
    return route


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
