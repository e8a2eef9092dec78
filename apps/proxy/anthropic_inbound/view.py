"""The ``/v1/messages`` view: Anthropic in, the gateway's route, Anthropic out.

Each attempt takes the path its deployment needs: an Anthropic deployment gets the client's
request as it is (so ``cache_control``, ``thinking`` and the rest survive), any other kind gets it
translated into a chat completion and translated back. Both end as an Anthropic answer or event
stream, so routing may fail over between kinds.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import KeyInfo
from apps.providers.adapters.anthropic import AnthropicAdapter
from apps.providers.adapters.base import ProviderAdapter
from apps.providers.adapters.wire import malformed_on_failure
from apps.providers.contracts import ChatRequest, ChatResponse, ChatStream, Usage
from apps.providers.errors import OpenAIError
from apps.providers.tokens import estimate_completion_usage, estimate_usage, usage_or_estimate
from apps.proxy.anthropic_inbound.request import chat_request
from apps.proxy.anthropic_inbound.response import anthropic_error_response, message_body, text_of_message
from apps.proxy.anthropic_inbound.stream import anthropic_stream, error_event
from apps.proxy.exchange import Exchange
from apps.proxy.parsing import parse_json_body
from apps.proxy.pipeline import call_route, choose_route, request_shape, stream_route
from apps.proxy.streaming import streaming_response
from apps.proxy.views import GatewayView
from apps.routing.table import Target


async def create_message(request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
    body = parse_json_body(request)
    chat = chat_request(body)
    exchange.model, exchange.stream = chat.model, chat.stream
    route = await choose_route(key, chat.model)
    shape = request_shape(route, body)
    beta = request.headers.get("anthropic-beta", "")  # for Anthropic deployments; others have no betas
    if chat.stream:

        async def open_stream(adapter: ProviderAdapter, target: Target) -> ChatStream:
            if isinstance(adapter, AnthropicAdapter):
                return await adapter.open_message_stream(body, upstream_model=target.upstream_model, beta=beta)
            stream = await adapter.open_stream(chat, upstream_model=target.upstream_model)
            return anthropic_stream(stream, target.upstream.provider_name)

        stream = await stream_route(route, exchange, open_stream, shape)
        return streaming_response(exchange, chat, stream, error_frame=error_event)

    async def complete(adapter: ProviderAdapter, target: Target) -> ChatResponse:
        if isinstance(adapter, AnthropicAdapter):
            return await adapter.message(body, upstream_model=target.upstream_model, beta=beta)
        answer = await adapter.chat(chat, upstream_model=target.upstream_model)
        return translated_message(chat, answer, target.upstream.provider_name)

    answer = await call_route(route, exchange, complete, shape)
    # A translated answer comes with usage (the provider's or an estimate); a native one without any is rare.
    exchange.usage = usage_or_estimate(answer.usage, lambda: _estimate(chat, answer.content))
    exchange.finish(status="ok", http_status=200)
    return HttpResponse(answer.content, content_type="application/json")


def translated_message(chat: ChatRequest, answer: ChatResponse, provider: str) -> ChatResponse:
    """A translated upstream's chat completion as an Anthropic message, usage included."""
    with malformed_on_failure(provider):  # an OpenAI-wire answer is relayed unread elsewhere; here it is read
        usage = usage_or_estimate(answer.usage, lambda: estimate_completion_usage(chat.body, answer.content))
        return ChatResponse(content=message_body(answer.content, usage), usage=usage)


def _estimate(chat: ChatRequest, message: bytes) -> Usage:
    return estimate_usage(chat.body, text_of_message(message))


class MessagesView(GatewayView):
    endpoint = "messages"

    async def post(self, request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
        return await create_message(request, exchange, key)

    def render_error(self, error: OpenAIError) -> HttpResponse:
        return anthropic_error_response(error)
