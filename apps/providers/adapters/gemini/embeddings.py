"""OpenAI ``/v1/embeddings`` ↔ Gemini ``batchEmbedContents``.

Gemini reports no token usage for embeddings, so usage is counted locally and marked estimated.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Any

import orjson

from apps.providers.adapters.wire import malformed_response
from apps.providers.contracts import ChatResponse
from apps.providers.errors import ProviderError
from apps.providers.tokens import estimate_input_usage


def embeddings_body(body: Mapping[str, Any], upstream_model: str) -> dict[str, Any]:
    requests = []
    for text in inputs_of(body):
        request: dict[str, Any] = {"model": f"models/{upstream_model}", "content": {"parts": [{"text": text}]}}
        if isinstance(body.get("dimensions"), int):
            request["outputDimensionality"] = body["dimensions"]
        requests.append(request)
    return {"requests": requests}


def embeddings_response(content: bytes, body: Mapping[str, Any], upstream_model: str, provider: str) -> ChatResponse:
    try:
        vectors = [item["values"] for item in orjson.loads(content)["embeddings"]]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise malformed_response(provider) from None
    as_base64 = body.get("encoding_format") == "base64"
    usage = estimate_input_usage(inputs_of(body))  # counted as the gateway counts any embeddings input
    data = [{"object": "embedding", "index": index, "embedding": _base64(vector) if as_base64 else vector}
            for index, vector in enumerate(vectors)]
    answer = {"object": "list", "data": data, "model": upstream_model,
              "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens}}
    return ChatResponse(content=orjson.dumps(answer), usage=usage)


def inputs_of(body: Mapping[str, Any]) -> list[str]:
    value = body.get("input")
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    if not items or not all(isinstance(item, str) for item in items):
        raise ProviderError("Gemini embeddings take text input: a string or an array of strings.", status=400,
                            type="invalid_request_error", param="input", code="invalid_input", retryable=False)
    return items


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
