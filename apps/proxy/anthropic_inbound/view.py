"""The ``/v1/messages`` view: Anthropic in, the gateway's route, Anthropic out."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import KeyInfo
from apps.providers.errors import OpenAIError
from apps.providers.tokens import estimate_completion_usage
from apps.proxy.anthropic_inbound.request import chat_request
from apps.proxy.anthropic_inbound.response import anthropic_error_response, message_body
from apps.proxy.anthropic_inbound.stream import anthropic_stream
from apps.proxy.exchange import Exchange
from apps.proxy.parsing import parse_json_body
from apps.proxy.pipeline import choose_route, complete, open_stream
from apps.proxy.streaming import streaming_response
from apps.proxy.views import GatewayView


async def create_message(request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
    chat = chat_request(parse_json_body(request))
    exchange.model, exchange.stream = chat.model, chat.stream
    route = await choose_route(key, chat.model)
    if chat.stream:
        stream = await open_stream(route, chat, exchange)
        return streaming_response(exchange, chat, anthropic_stream(stream))
    answer = await complete(route, chat, exchange)
    exchange.usage = (
        answer.usage if answer.usage.source == "provider" else estimate_completion_usage(chat.body, answer.content)
    )
    exchange.finish(status="ok", http_status=200)
    return HttpResponse(message_body(answer.content, exchange.usage), content_type="application/json")


class MessagesView(GatewayView):
    endpoint = "messages"

    async def post(self, request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
        return await create_message(request, exchange, key)

    def render_error(self, error: OpenAIError) -> HttpResponse:
        return anthropic_error_response(error)
