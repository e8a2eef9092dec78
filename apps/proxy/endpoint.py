"""What one ``/v1/`` endpoint supplies to the request pipeline, and nothing more.

An endpoint says how its body parses, which adapter call answers it (whole and streamed), how much
output a request may generate, how usage is estimated when a provider reports none, how its errors
render, and whether its answers may be cached. Everything else (authentication, idempotency,
admission, the cache, routing and failover, settlement) is ``apps.proxy.pipeline``'s, the same for
every endpoint, so a step added there reaches them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from django.http import HttpRequest, HttpResponse

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import ChatResponse, ChatStream, Usage
from apps.providers.errors import OpenAIError
from apps.providers.tokens import estimate_usage
from apps.proxy.errors import InvalidRequest, error_response, openai_error_frame
from apps.routing.table import Target

if TYPE_CHECKING:
    from apps.proxy.exchange import Exchange


class ClientRequest(Protocol):
    """A parsed request as the pipeline reads it; each endpoint's typed request has these."""

    @property
    def model(self) -> str: ...

    @property
    def body(self) -> Mapping[str, Any]: ...  # the client's JSON: cache keys, token counts, idempotency

    @property
    def stream(self) -> bool: ...

    @property
    def include_usage(self) -> bool: ...  # a stream's client asked for the usage chunk


R = TypeVar("R", bound=ClientRequest)


class Endpoint(Generic[R]):
    """The base of every endpoint; a subclass overrides what differs (see the module docstring)."""

    name: ClassVar[str]  # the ledger's ``endpoint``
    cacheable: ClassVar[bool] = False  # answers may come from the response cache (chat completions)
    generates_output: ClassVar[bool] = True  # False for embeddings: nothing to reserve output tokens for

    def parse(self, request: HttpRequest) -> R:
        """The body as a typed request, or an ``InvalidRequest`` naming the parameter."""
        raise NotImplementedError

    async def prepare(self, call: R, exchange: Exchange) -> R:
        """The request completed with what it refers to and only the authenticated key may read (a stored
        conversation it continues); most requests refer to nothing."""
        return call

    def requested_output(self, call: R) -> int | None:
        """Output tokens the request may generate by its own parameters (its cap times its choices),
        or None when it sets no cap (admission then assumes the deployments')."""
        return None

    async def answer(self, call: R, adapter: ProviderAdapter, target: Target) -> ChatResponse:
        raise NotImplementedError

    async def open_stream(self, call: R, adapter: ProviderAdapter, target: Target) -> ChatStream:
        raise InvalidRequest(f"{self.name} cannot be streamed.", param="stream", code="invalid_value")

    def estimate(self, call: R, content: bytes) -> Usage:
        """Usage of a whole answer whose provider reported none."""
        raise NotImplementedError

    def estimate_stream(self, call: R, relayed_text: str) -> Usage:
        """Usage of a stream whose provider reported none (cut short, or the client left)."""
        return estimate_usage(call.body, relayed_text)

    def render_error(self, error: OpenAIError) -> HttpResponse:
        """The error body this endpoint's clients read: OpenAI's, unless it speaks another API."""
        return error_response(error)

    def error_frame(self, error: OpenAIError) -> bytes:
        """A failure after a stream began, as one event in this endpoint's stream format."""
        return openai_error_frame(error)

    def stream_error_frame(self, call: R, error: OpenAIError) -> bytes:
        """``error_frame()`` for a stream whose events carry state (the Responses API numbers them)."""
        return self.error_frame(error)
