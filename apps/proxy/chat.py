"""``POST /v1/chat/completions``: the endpoint every provider kind serves, and the only one cached."""

from __future__ import annotations

from django.http import HttpRequest

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import ChatRequest, ChatResponse, ChatStream, Usage
from apps.providers.tokens import estimate_completion_usage
from apps.proxy.endpoint import Endpoint
from apps.proxy.parsing import parse_chat_request
from apps.routing.table import Target


class ChatCompletions(Endpoint[ChatRequest]):
    name = "chat.completions"
    cacheable = True

    def parse(self, request: HttpRequest) -> ChatRequest:
        return parse_chat_request(request)

    def requested_output(self, call: ChatRequest) -> int | None:
        cap = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
        return None if cap is None else cap * (call.body.get("n") or 1)

    async def answer(self, call: ChatRequest, adapter: ProviderAdapter, target: Target) -> ChatResponse:
        return await adapter.chat(call, upstream_model=target.upstream_model)

    async def open_stream(self, call: ChatRequest, adapter: ProviderAdapter, target: Target) -> ChatStream:
        return await adapter.open_stream(call, upstream_model=target.upstream_model)

    def estimate(self, call: ChatRequest, content: bytes) -> Usage:
        return estimate_completion_usage(call.body, content)
