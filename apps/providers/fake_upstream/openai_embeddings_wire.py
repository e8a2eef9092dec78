"""OpenAI's /v1/embeddings and /v1/models endpoints."""

from __future__ import annotations

from typing import Any

from .content import embedding_input_tokens, embedding_vector, encode_base64_floats
from .openai_wire import required_text
from .replies import JsonReply, Payload, ProviderError
from .rules import Knobs

DEFAULT_DIMENSIONS = 16
MAX_DIMENSIONS = 4096
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini", "text-embedding-3-small")


def embeddings(body: Payload, knobs: Knobs) -> JsonReply:
    model = required_text(body, "model")
    items = _embedding_items(body.get("input"))
    dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
    if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise ProviderError(400, f"'dimensions' must be 1..{MAX_DIMENSIONS}.",
                            param="dimensions")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ProviderError(400, "'encoding_format' must be 'float' or 'base64'.",
                            param="encoding_format")
    data = []
    for index, item in enumerate(items):
        vector = embedding_vector(item, dimensions)
        embedding = encode_base64_floats(vector) if encoding == "base64" else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(embedding_input_tokens(item) for item in items)
    payload: Payload = {"object": "list", "data": data, "model": model}
    if not knobs.no_usage:
        payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return JsonReply(payload, essential_field="data")


def _embedding_items(value: object) -> list[Any]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(t, int) for t in value):
        return [value]  # one input given as token ids
    if isinstance(value, list) and value:
        return value
    raise ProviderError(400, "'input' must be a non-empty string or array.", param="input")


def list_models() -> JsonReply:
    data = [{"id": model, "object": "model", "created": 1_700_000_000,
             "owned_by": "fake-upstream"} for model in MODELS]
    return JsonReply({"object": "list", "data": data}, essential_field="data")
