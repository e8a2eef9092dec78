"""The Gemini adapter: paths, the ``x-goog-api-key`` header, embeddings, and the error mapping."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import orjson

from apps.providers.adapters.gemini.embeddings import embeddings_body, embeddings_response
from apps.providers.adapters.gemini.request import generate_body
from apps.providers.adapters.gemini.response import chat_response
from apps.providers.adapters.gemini.stream import GeminiStream
from apps.providers.adapters.openai import error_from_response, error_object
from apps.providers.adapters.translated import TranslatingAdapter
from apps.providers.adapters.wire import malformed_on_failure
from apps.providers.contracts import ChatRequest, ChatResponse, EmbeddingsRequest
from apps.providers.errors import ProviderError

# Google's error statuses as OpenAI's error types.
ERROR_TYPES = {"INVALID_ARGUMENT": "invalid_request_error", "FAILED_PRECONDITION": "invalid_request_error",
               "NOT_FOUND": "invalid_request_error", "OUT_OF_RANGE": "invalid_request_error"}


class GeminiAdapter(TranslatingAdapter):
    """``POST {base_url}/models/{model}:generateContent``; base_url like
    ``https://generativelanguage.googleapis.com/v1beta``."""

    kind = "gemini"

    def chat_path(self, upstream_model: str, *, stream: bool) -> str:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/models/{quote(upstream_model, safe='')}:{method}"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self.upstream.headers}
        if self.upstream.api_key:
            headers["x-goog-api-key"] = self.upstream.api_key
        return headers

    def encode(self, request: ChatRequest, upstream_model: str) -> bytes:
        return orjson.dumps(generate_body(request.body))

    def decode(self, content: bytes, upstream_model: str) -> ChatResponse:
        return chat_response(content, self.upstream.provider_name, upstream_model)

    def translator(self, upstream_model: str) -> GeminiStream:
        return GeminiStream(self.upstream.provider_name, upstream_model)

    async def embeddings(self, request: EmbeddingsRequest, *, upstream_model: str) -> ChatResponse:
        path = f"/models/{quote(upstream_model, safe='')}:batchEmbedContents"
        content = await self.post(path, orjson.dumps(embeddings_body(request.body, upstream_model)))
        with malformed_on_failure(self.upstream.provider_name):
            return embeddings_response(content, request.body, upstream_model, self.upstream.provider_name)

    def error(self, status: int, content: bytes, headers: httpx.Headers) -> ProviderError:
        name = self.upstream.provider_name
        if status == 400 and b"API_KEY_INVALID" in content:
            # Gemini answers a bad key with 400, not 401: still the operator's problem, not the client's.
            error = error_from_response(401, content, headers, name)
            error.upstream_status = status
            return error
        return error_from_response(status, content, headers, name, fields=error_fields)


def error_fields(content: bytes) -> dict[str, Any]:
    """``{"error": {"code", "message", "status"}}`` as OpenAI's error fields."""
    if not (error := error_object(content)):
        return {}
    status = str(error.get("status") or "")
    return {"message": str(error.get("message") or "") or None,
            "type": ERROR_TYPES.get(status, "invalid_request_error"), "code": status or None, "param": None}
