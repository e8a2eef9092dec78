"""``POST /v1/responses``: the Responses API in, the gateway's route, the Responses API out.

Each attempt takes the path its deployment needs: an ``openai`` deployment gets the client's request as
it is (a previous response's conversation written out as input items, since the gateway, not OpenAI,
holds it), any other kind gets it translated into a chat completion and translated back. Both end as a
Responses ``response`` or event stream, so routing may fail over between kinds before the first byte.
A request a chat completion cannot carry (a built-in tool, say) fails over past the kinds that would
need the translation, and is the client's 400 naming what could not be carried if none is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.http import HttpRequest

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.adapters.openai import OpenAIAdapter
from apps.providers.adapters.wire import malformed_on_failure
from apps.providers.contracts import ChatRequest, ChatResponse, ChatStream, Usage
from apps.providers.errors import OpenAIError, ProviderError
from apps.providers.tokens import estimate_completion_usage, estimate_usage, usage_or_estimate
from apps.proxy.endpoint import Endpoint
from apps.proxy.errors import InvalidRequest
from apps.proxy.exchange import Exchange
from apps.proxy.parsing import parse_json_body
from apps.proxy.responses import store
from apps.proxy.responses.output import from_completion, new_id, output_text, skeleton
from apps.proxy.responses.request import Parsed, parse_body
from apps.proxy.responses.stream import EventWriter, Progress, tapped_stream, translated_stream
from apps.proxy.responses.translate import Translator
from apps.routing.table import Target


@dataclass(slots=True)
class Owner:
    """Who the request is for, known after parsing (the tenant's stored responses), and its stream's progress."""

    tenant_id: int = 0
    progress: Progress = field(default_factory=Progress)


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    parsed: Parsed
    native: dict[str, Any]  # what an openai deployment gets
    conversation: list[dict[str, Any]]  # every input item up to this turn: what a stored response keeps
    chat: ChatRequest  # the translation, for every other kind (and what admission and estimates count)
    problem: InvalidRequest | None  # what the translation could not carry
    owner: Owner

    @property
    def model(self) -> str:
        return self.parsed.model

    @property
    def body(self) -> Mapping[str, Any]:
        return self.chat.body

    @property
    def stream(self) -> bool:
        return self.parsed.stream

    @property
    def include_usage(self) -> bool:
        return False  # usage arrives inside response.completed, never as a chunk of its own


def build(parsed: Parsed, history: list[dict[str, Any]], owner: Owner) -> ResponsesRequest:
    conversation = [*history, *parsed.items]
    native = parsed.native
    if parsed.previous_response_id is not None:  # written out: OpenAI may never have seen the earlier turns
        native = {key: value for key, value in native.items() if key != "previous_response_id"}
        native["input"] = [*map(_as_input, history), *parsed.items]
    translation = Translator().translate(parsed.native, parsed.model, parsed.items, stream=parsed.stream,
                                         history=history)
    chat = ChatRequest(model=parsed.model, body=translation.chat, stream=parsed.stream, include_usage=parsed.stream)
    return ResponsesRequest(parsed=parsed, native=native, conversation=conversation, chat=chat,
                            problem=translation.problem, owner=owner)


def _as_input(item: dict[str, Any]) -> dict[str, Any]:
    """An earlier output item as OpenAI input: messages and calls without the ids and status their response gave
    them, and without what another kind's translation added (a Gemini call's ``extra_content``)."""
    if item.get("type") in ("message", "function_call"):
        return {key: value for key, value in item.items() if key not in ("id", "status", "extra_content")}
    return item


class Responses(Endpoint[ResponsesRequest]):
    name = "responses"

    def parse(self, request: HttpRequest) -> ResponsesRequest:
        return build(parse_body(parse_json_body(request)), [], Owner())

    async def prepare(self, call: ResponsesRequest, exchange: Exchange) -> ResponsesRequest:
        assert exchange.key is not None  # parsing follows authentication
        call.owner.tenant_id = exchange.key.tenant_id
        previous_id = call.parsed.previous_response_id
        if previous_id is None:
            return call
        previous = await store.find(call.owner.tenant_id, previous_id)
        if previous is None:
            raise OpenAIError(f"Previous response with id '{previous_id}' not found.", status=404,
                              type="invalid_request_error", param="previous_response_id", code="not_found")
        return build(call.parsed, previous.conversation, call.owner)

    def requested_output(self, call: ResponsesRequest) -> int | None:
        cap = call.parsed.native.get("max_output_tokens")
        return int(cap) if cap is not None else None

    async def answer(self, call: ResponsesRequest, adapter: ProviderAdapter, target: Target) -> ChatResponse:
        if isinstance(adapter, OpenAIAdapter):
            answer = await adapter.responses(call.native, upstream_model=target.upstream_model)
            await self.keep(call, orjson.loads(answer.content))
            return answer
        provider = target.upstream.provider_name
        answer = await adapter.chat(self.translated(call), upstream_model=target.upstream_model)
        with malformed_on_failure(provider):  # a translated answer is read here, not relayed
            usage = usage_or_estimate(answer.usage, lambda: estimate_completion_usage(call.chat.body, answer.content))
            response = from_completion(self.skeleton(call), answer.content, usage)
        await self.keep(call, response)
        return ChatResponse(content=orjson.dumps(response), usage=usage)

    async def open_stream(self, call: ResponsesRequest, adapter: ProviderAdapter, target: Target) -> ChatStream:
        progress = call.owner.progress
        progress.restart()

        async def keep(response: dict[str, Any]) -> None:
            await self.keep(call, response)

        if isinstance(adapter, OpenAIAdapter):
            stream = await adapter.open_responses_stream(call.native, upstream_model=target.upstream_model)
            return tapped_stream(stream, progress, keep)
        stream = await adapter.open_stream(self.translated(call), upstream_model=target.upstream_model)
        writer = EventWriter(self.skeleton(call), progress, lambda text: estimate_usage(call.chat.body, text))
        return translated_stream(stream, target.upstream.provider_name, writer, keep)

    def estimate(self, call: ResponsesRequest, content: bytes) -> Usage:
        return estimate_usage(call.chat.body, output_text(orjson.loads(content)))

    def stream_error_frame(self, call: ResponsesRequest, error: OpenAIError) -> bytes:
        return call.owner.progress.failure(error)

    def translated(self, call: ResponsesRequest) -> ChatRequest:
        """The chat translation, or, if it lost something, a refusal that moves on to the next deployment."""
        if call.problem is not None:
            raise ProviderError(call.problem.message, status=400, type="invalid_request_error",
                                param=call.problem.param, code="unsupported_by_provider", retryable=True)
        return call.chat

    def skeleton(self, call: ResponsesRequest) -> dict[str, Any]:
        return skeleton(call.parsed.native, response_id=new_id("resp"), model=call.model, store=call.parsed.store)

    async def keep(self, call: ResponsesRequest, response: dict[str, Any]) -> None:
        if call.parsed.store and isinstance(response.get("id"), str):
            turn = len(call.conversation) - len(call.parsed.items)
            await store.keep(call.owner.tenant_id, store.Stored.of(response, call.conversation, turn))


