"""OpenAI's Responses API relayed as it is, for ``/v1/responses`` served by an ``openai`` deployment.

Translating a Responses request into a chat completion loses what chat cannot carry (built-in tools,
reasoning items, conversation state kept by OpenAI), so an ``openai`` deployment gets the body with only
``model`` replaced, and the answer and its events come back byte for byte, read only for usage (and
text, for estimates). Other kinds never see this format: the gateway translates for them above the
adapters (``apps.proxy.responses``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apps.providers.adapters.wire import (
    malformed_response,
    mid_stream_error,
    reported_tokens,
    sse_data,
    stream_incomplete,
)
from apps.providers.contracts import StreamEvent, Usage

# Events after which the stream has nothing more to say.
FINAL_EVENTS = frozenset({"response.completed", "response.incomplete"})
# Events that tell the client nothing yet: until another arrives, routing may still fail over.
OPENING_EVENTS = frozenset({"response.created", "response.in_progress", "response.queued",
                            "response.content_part.added"})


def responses_body(body: Mapping[str, Any], upstream_model: str) -> bytes:
    return orjson.dumps({**body, "model": upstream_model})


def usage_of_response(content: bytes, provider: str) -> Usage:
    """The usage of a whole ``response`` object; one without an ``output`` list is no answer."""
    answer = _object(content, provider)
    if not isinstance(answer.get("output"), list):
        raise malformed_response(provider)
    usage = answer.get("usage")
    return usage_from(usage) if isinstance(usage, dict) else Usage()


def usage_from(usage: Mapping[str, Any]) -> Usage:
    """Responses usage in the gateway's terms: reasoning tokens are inside ``output_tokens``, billed as output;
    ``input_tokens`` includes the tokens read from and written to the prompt cache, as chat's ``prompt_tokens``
    does (each billed at its own price)."""
    details = usage.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    return Usage(prompt_tokens=reported_tokens(usage.get("input_tokens")),
                 completion_tokens=reported_tokens(usage.get("output_tokens")),
                 cached_tokens=reported_tokens(details.get("cached_tokens")),
                 cache_creation_tokens=reported_tokens(details.get("cache_write_tokens")), source="provider")


class ResponsesEvents:
    """Relays the Responses event stream unchanged; ``response.completed`` carries the usage.

    The provider's ``error`` and ``response.failed`` events end the stream as a ``ProviderError``, so the
    gateway reports the failure once, in its own words, and a failure before content may fail over.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.done = False

    def feed(self, frame: bytes) -> list[StreamEvent]:
        data = sse_data(frame)
        if not data:
            return []
        event = _object(data, self.provider)
        kind = event.get("type")
        relayed = frame + b"\n\n"
        if kind == "error":
            raise mid_stream_error(self.provider, event.get("message"), event.get("code"))
        if kind == "response.failed":
            error = (event.get("response") or {}).get("error") or {}
            raise mid_stream_error(self.provider, error.get("message"), error.get("code"))
        if kind in FINAL_EVENTS:
            self.done = True
            usage = (event.get("response") or {}).get("usage")
            return [StreamEvent(frame=relayed, usage=usage_from(usage) if isinstance(usage, dict) else None)]
        if kind == "response.output_text.delta":
            return [StreamEvent(frame=relayed, text=str(event.get("delta") or ""))]
        return [StreamEvent(frame=relayed, opening=_says_nothing_yet(kind, event))]

    def finish(self) -> list[StreamEvent]:
        if not self.done:
            raise stream_incomplete(self.provider)
        return []


def _says_nothing_yet(kind: object, event: dict[str, Any]) -> bool:
    if kind == "response.output_item.added":
        return (event.get("item") or {}).get("type") in ("message", "reasoning")
    return kind in OPENING_EVENTS


def _object(data: bytes, provider: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise malformed_response(provider) from None
    if not isinstance(parsed, dict):
        raise malformed_response(provider)
    return parsed
