"""The base class every provider adapter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from apps.providers.contracts import ChatRequest, ChatResponse, ChatStream, Upstream


class ProviderAdapter(ABC):
    """Speaks one provider's wire format, in OpenAI chat completion terms on our side.

    The contract every adapter keeps:

    - ``chat()`` returns a complete OpenAI-shaped response, or raises ``ProviderError``.
    - ``open_stream()`` returns once the upstream has accepted the request; failures before that
      raise ``ProviderError`` (so the caller may retry or fail over before the client sees a byte).
      The returned stream yields OpenAI ``chat.completion.chunk`` events and raises
      ``ProviderError`` if the upstream fails midway; its ``close()`` cancels the upstream request.
    - Every parameter of the client's request reaches the upstream untouched unless the provider's
      wire format cannot carry it; only ``model`` is replaced by ``upstream_model``.
    - Usage is always obtained from the upstream when it can report it.
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
