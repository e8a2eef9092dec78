"""``POST /v1/messages``: Anthropic in, the gateway's route, Anthropic out.

Each attempt takes the path its deployment needs: an Anthropic deployment gets the client's
request as it is (so ``cache_control``, ``thinking`` and the rest survive), any other kind gets it
translated into a chat completion and translated back. Both end as an Anthropic answer or event
stream, so routing may fail over between kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse

from apps.providers.adapters.anthropic import AnthropicAdapter
from apps.providers.adapters.base import ProviderAdapter
from apps.providers.adapters.wire import malformed_on_failure
from apps.providers.contracts import ChatRequest, ChatResponse, ChatStream, Usage
from apps.providers.errors import OpenAIError
from apps.providers.tokens import estimate_completion_usage, estimate_usage, usage_or_estimate
from apps.proxy.anthropic_inbound.request import chat_request
from apps.proxy.anthropic_inbound.response import anthropic_error_response, message_body, text_of_message
from apps.proxy.anthropic_inbound.stream import anthropic_stream, error_event
from apps.proxy.endpoint import Endpoint
from apps.proxy.parsing import parse_json_body
from apps.routing.table import Target


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    native: dict[str, Any]  # the client's body, sent as it is to Anthropic deployments
    chat: ChatRequest  # its translation, for every other kind (and what counting and estimates read)
    beta: str  # the client's anthropic-beta header, for Anthropic deployments (others have no betas)

    @property
    def model(self) -> str:
        return self.chat.model

    @property
    def body(self) -> Mapping[str, Any]:
        return self.chat.body

    @property
    def stream(self) -> bool:
        return self.chat.stream

    @property
    def include_usage(self) -> bool:
        return self.chat.include_usage


class Messages(Endpoint[MessagesRequest]):
    name = "messages"

    def parse(self, request: HttpRequest) -> MessagesRequest:
        native = parse_json_body(request)
        return MessagesRequest(native=native, chat=chat_request(native),
                               beta=request.headers.get("anthropic-beta", ""))

    def requested_output(self, call: MessagesRequest) -> int | None:
        cap = call.native["max_tokens"]  # required, and checked by chat_request
        return int(cap)

    async def answer(self, call: MessagesRequest, adapter: ProviderAdapter, target: Target) -> ChatResponse:
        if isinstance(adapter, AnthropicAdapter):
            return await adapter.message(call.native, upstream_model=target.upstream_model, beta=call.beta)
        answer = await adapter.chat(call.chat, upstream_model=target.upstream_model)
        return translated_message(call.chat, answer, target.upstream.provider_name)

    async def open_stream(self, call: MessagesRequest, adapter: ProviderAdapter, target: Target) -> ChatStream:
        if isinstance(adapter, AnthropicAdapter):
            return await adapter.open_message_stream(call.native, upstream_model=target.upstream_model, beta=call.beta)
        stream = await adapter.open_stream(call.chat, upstream_model=target.upstream_model)
        return anthropic_stream(stream, target.upstream.provider_name)

    def estimate(self, call: MessagesRequest, content: bytes) -> Usage:
        # A translated answer comes with usage (the provider's or an estimate); a native one without any is rare.
        return estimate_usage(call.chat.body, text_of_message(content))

    def render_error(self, error: OpenAIError) -> HttpResponse:
        return anthropic_error_response(error)

    def error_frame(self, error: OpenAIError) -> bytes:
        return error_event(error)


def translated_message(chat: ChatRequest, answer: ChatResponse, provider: str) -> ChatResponse:
    """A translated upstream's chat completion as an Anthropic message, usage included."""
    with malformed_on_failure(provider):  # an OpenAI-wire answer is relayed unread elsewhere; here it is read
        usage = usage_or_estimate(answer.usage, lambda: estimate_completion_usage(chat.body, answer.content))
        return ChatResponse(content=message_body(answer.content, usage), usage=usage)
