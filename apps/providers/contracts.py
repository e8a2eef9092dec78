"""What adapters take and give: frozen dataclasses, the only currency across the adapter boundary.

Adapters never see the ORM or Django requests; the pipeline never sees a provider's wire format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

UsageSource = Literal["provider", "estimated", "none"]


@dataclass(frozen=True, slots=True)
class Upstream:
    """One provider endpoint as the adapter needs it (decrypted secret included: keep it in memory)."""

    provider_id: int
    provider_name: str
    kind: str
    base_url: str
    api_key: str
    headers: Mapping[str, str]
    timeout_s: float
    api_version: str = ""  # Azure OpenAI's api-version query parameter; blank for other kinds


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A parsed chat completion request. ``body`` is the client's JSON, every parameter untouched."""

    model: str
    body: Mapping[str, Any]
    stream: bool
    include_usage: bool  # the client asked for the usage chunk (stream_options.include_usage)


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    """A parsed ``/v1/embeddings`` request; ``body`` is the client's JSON, untouched."""

    model: str
    body: Mapping[str, Any]
    stream: bool = False  # embeddings are never streamed; here so every request reads alike
    include_usage: bool = False


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """A parsed legacy ``/v1/completions`` request (``prompt`` rather than ``messages``)."""

    model: str
    body: Mapping[str, Any]
    stream: bool
    include_usage: bool


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    source: UsageSource = "none"
    # Prompt tokens written to a provider's prompt cache (Anthropic). Included in prompt_tokens, never
    # in cached_tokens (those were read from the cache), and priced at the deployment's write price.
    cache_creation_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


NO_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """A complete OpenAI-shaped answer: ``content`` is sent to the client byte for byte."""

    content: bytes
    usage: Usage


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event, already framed (``data: …\\n\\n``) in OpenAI's chunk format."""

    frame: bytes
    usage: Usage | None = None  # set on the event that carried usage
    usage_only: bool = False  # the trailing usage chunk OpenAI sends only on request
    text: str = ""  # content delta, kept to estimate usage when the upstream never reports it
    # Sent before anything the client can use (OpenAI's role-only chunk, Anthropic's message_start
    # and ping): a stream of only these has not begun, so routing may still fail over.
    opening: bool = False


@dataclass(slots=True)
class ChatStream:
    """An open upstream stream: status and headers are in, events are still to come.

    Events come in batches, one per upstream read (never empty), so what arrived together can be
    relayed together.
    """

    events: AsyncIterator[list[StreamEvent]]
    close: Callable[[], Awaitable[None]]  # releases the upstream connection; idempotent
