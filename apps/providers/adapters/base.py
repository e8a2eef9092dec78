"""The base class every provider adapter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from apps.providers.contracts import (
    ChatRequest,
    ChatResponse,
    ChatStream,
    CompletionRequest,
    EmbeddingsRequest,
    Upstream,
)
from apps.providers.errors import ProviderError


class ProviderAdapter(ABC):
    """Speaks one provider's wire format, in OpenAI chat completion terms on our side.

    The contract every adapter keeps:

    - ``chat()`` returns a complete OpenAI-shaped response, or raises ``ProviderError``.
    - ``open_stream()`` returns once the upstream has accepted the request; failures before that
      raise ``ProviderError`` (so the caller may retry or fail over before the client sees a byte).
      The returned stream yields OpenAI ``chat.completion.chunk`` events and raises
      ``ProviderError`` if the upstream fails midway; its ``close()`` cancels the upstream request.
      A stream ends with an event that carries the provider's usage whenever the provider reports
      it, so streamed requests are billed like the others. Events that tell the client nothing yet
      (a role-only chunk, Anthropic's message_start and ping) are marked ``opening``: until another
      arrives, routing may still fail over.
    - ``embeddings()`` and ``completions()`` / ``open_completion_stream()`` answer in OpenAI's
      ``/v1/embeddings`` and legacy ``/v1/completions`` shapes. A kind that cannot serve them keeps
      the base implementation, which raises a *retryable* ``ProviderError``, so routing moves on to
      a deployment that can.
    - A kind may also relay its own provider's API as it is, for the gateway endpoint that speaks it
      (``AnthropicAdapter.message()`` for ``/v1/messages``, ``OpenAIAdapter.responses()`` for
      ``/v1/responses``): same bounds and errors, the answer and events byte for byte, read for usage.
    - Every parameter of the client's request reaches the upstream untouched unless the provider's
      wire format cannot carry it; only ``model`` is replaced by ``upstream_model``. Adapters that
      translate carry every parameter that has a counterpart and drop the rest.
    - Usage is always obtained from the upstream when it can report it; ``prompt_tokens`` includes
      cached tokens, as OpenAI reports it.
    - Each attempt's total time is bounded by ``upstream.timeout_s``; idle streams by the same.
    - No ORM, no Django request, no retries: one attempt per call. Retries, failover and
      accounting belong to the caller.
    - ``ProviderError`` is the only exception that escapes.
    """

    kind: ClassVar[str]  # the provider kind slug; doubles as the registry key

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    @abstractmethod
    async def chat(self, request: ChatRequest, *, upstream_model: str) -> ChatResponse: ...

    @abstractmethod
    async def open_stream(self, request: ChatRequest, *, upstream_model: str) -> ChatStream: ...

    async def embeddings(self, request: EmbeddingsRequest, *, upstream_model: str) -> ChatResponse:
        raise self.unsupported("embeddings")

    async def completions(self, request: CompletionRequest, *, upstream_model: str) -> ChatResponse:
        raise self.unsupported("legacy completions")

    async def open_completion_stream(self, request: CompletionRequest, *, upstream_model: str) -> ChatStream:
        raise self.unsupported("legacy completions")

    def unsupported(self, what: str) -> ProviderError:
        return ProviderError(
            f"Provider {self.upstream.provider_name} ({self.kind}) does not offer {what}.",
            status=400, type="invalid_request_error", code="unsupported_by_provider", retryable=True,
        )
