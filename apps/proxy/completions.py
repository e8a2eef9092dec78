"""``POST /v1/completions``, OpenAI's legacy text completions, for OpenAI-wire upstreams.

Deployments on providers that have no legacy endpoint (Anthropic, Gemini) fail over with a
retryable error.
"""

from __future__ import annotations

from django.http import HttpRequest

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.contracts import ChatResponse, ChatStream, CompletionRequest, Usage
from apps.providers.tokens import estimate_completion_usage
from apps.proxy.endpoint import Endpoint
from apps.proxy.parsing import parse_completion_request
from apps.routing.table import Target


class Completions(Endpoint[CompletionRequest]):
    name = "completions"

    def parse(self, request: HttpRequest) -> CompletionRequest:
        return parse_completion_request(request)

    def requested_output(self, call: CompletionRequest) -> int | None:
        cap = call.body.get("max_tokens")
        # best_of completions are generated and n of them returned: all are billed.
        choices = max(call.body.get("n") or 1, call.body.get("best_of") or 1)
        return None if cap is None else cap * choices * _prompts(call)

    async def answer(self, call: CompletionRequest, adapter: ProviderAdapter, target: Target) -> ChatResponse:
        return await adapter.completions(call, upstream_model=target.upstream_model)

    async def open_stream(self, call: CompletionRequest, adapter: ProviderAdapter, target: Target) -> ChatStream:
        return await adapter.open_completion_stream(call, upstream_model=target.upstream_model)

    def estimate(self, call: CompletionRequest, content: bytes) -> Usage:
        return estimate_completion_usage(call.body, content)


def _prompts(call: CompletionRequest) -> int:
    """A list of prompt strings is a batch: each gets its own completions."""
    prompt = call.body.get("prompt")
    return len(prompt) if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt) else 1
