"""``POST /v1/messages/count_tokens``: what a Messages request's input would count, for Anthropic clients.

An Anthropic deployment counts for itself: the body goes to its ``/v1/messages/count_tokens`` with
only ``model`` replaced (and the client's ``anthropic-beta`` header), and the answer comes back as
it is. A model no Anthropic deployment can count for (none configured, or none reachable while a
deployment of another kind could still serve it) is counted by the gateway: the request as it would
be translated, through ``apps.providers.tokens`` (o200k; system, messages and tool definitions,
an allowance per image), the same count admission reserves by.

Counting is not generation: it is admitted against no rate limit or budget, and moves no breaker
or health statistics (a fast count must not make a deployment look fast or well to routing). It
still leaves one ledger row, as every authenticated request does (``GET /v1/models`` too): who
asked, for which model, which provider answered and how it ended; with no tokens and no cost,
because nothing was generated or billed, and usage reports sum the ledger's tokens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import orjson
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import KeyInfo
from apps.providers.adapters.anthropic import AnthropicAdapter
from apps.providers.errors import OpenAIError, ProviderError
from apps.providers.registry import adapter_for
from apps.providers.tokens import count_prompt_tokens_exactly
from apps.proxy.anthropic_inbound.request import chat_body, required_model
from apps.proxy.anthropic_inbound.response import anthropic_error_response
from apps.proxy.exchange import Exchange
from apps.proxy.parsing import parse_json_body
from apps.proxy.pipeline import choose_route
from apps.proxy.views import GatewayView
from apps.routing.attempts import Attempt, may_fail_over
from apps.routing.shared_state import shared_state
from apps.routing.strategies import RequestShape, order_targets
from apps.routing.table import ModelRoute, Target

COUNTING_KIND = AnthropicAdapter.kind
USABLE_BREAKER_STATES = ("closed", "forced closed")  # never an open one's trial slot: a count proves nothing


class CountTokensView(GatewayView):
    endpoint = "count_tokens"

    async def post(self, request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
        body = parse_json_body(request)
        exchange.model = required_model(body)
        translated = chat_body(body, exchange.model)  # checks what a local count reads, whoever counts
        route = await choose_route(key, exchange.model)
        counted = await count_upstream(route, body, exchange, beta=request.headers.get("anthropic-beta", ""))
        if counted is None:
            exchange.note = "counted by the gateway"
            tokens = await asyncio.to_thread(count_prompt_tokens_exactly, translated)
            counted = orjson.dumps({"input_tokens": tokens})
        exchange.finish(status="ok", http_status=200)
        return HttpResponse(counted, content_type="application/json")

    def render_error(self, error: OpenAIError) -> HttpResponse:
        return anthropic_error_response(error)


async def count_upstream(route: ModelRoute, body: dict[str, object], exchange: Exchange, *, beta: str) -> bytes | None:
    """The count of the first Anthropic deployment that answers, or None when none may be asked.

    A failure another deployment could fix moves on to the next; when none is left, the request is
    counted locally if the model has a deployment of another kind (it would be served there), and the
    last failure is the client's answer if the model has only Anthropic ones.
    """
    counters = [target for target in _ordered(route) if target.upstream.kind == COUNTING_KIND]
    error: ProviderError | None = None
    for target in counters:
        adapter = adapter_for(target.upstream)
        assert isinstance(adapter, AnthropicAdapter)
        started = time.perf_counter()
        try:
            counted = await adapter.count_tokens(body, upstream_model=target.upstream_model, beta=beta)
        except ProviderError as exc:
            exchange.attempts.append(_attempt(route, target, exc.code or exc.type, started))
            if not may_fail_over(exc):
                raise
            error = exc
            continue
        exchange.attempts.append(_attempt(route, target, "ok", started))
        return counted
    if error is not None and all(target.upstream.kind == COUNTING_KIND for target in route.targets):
        raise error
    return None


def _ordered(route: ModelRoute) -> list[Target]:
    usable = tuple(t for t in route.targets if shared_state.breakers.state_of(t) in USABLE_BREAKER_STATES)
    return order_targets(dataclasses.replace(route, targets=usable), RequestShape(), shared_state.health)


def _attempt(route: ModelRoute, target: Target, outcome: str, started: float) -> Attempt:
    return Attempt(target, outcome, (time.perf_counter() - started) * 1000, model=route.name)
