"""Step 2: the request body → a typed request, or a 400 that names the offending parameter.

Only what the gateway itself relies on is checked here: what it routes by, what admission reserves
for (output caps, choices), and every string the ledger or a response header copies (``model``:
printable, no control characters, at most MODEL_MAX_CHARS). Every other parameter goes to the
provider untouched, and the provider, which knows its own limits, judges it.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest

from apps.providers.contracts import ChatRequest, CompletionRequest, EmbeddingsRequest
from apps.proxy.errors import InvalidRequest

MODEL_MAX_CHARS = 200  # the ledger's public_model and upstream_model columns
MAX_TOKENS_LIMIT = 2**31 - 1  # larger caps mean nothing to any provider, and would overflow counters
MAX_CHOICES = 128  # OpenAI's bound on n


def parse_json_body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise InvalidRequest(
            f"Expected Content-Type application/json, got {request.content_type or 'none'}.",
            code="unsupported_content_type",
        )
    if not request.body:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="empty_body")
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return body


def parse_chat_request(request: HttpRequest) -> ChatRequest:
    body = parse_json_body(request)
    model = parse_model(body)
    _check_messages(body.get("messages"))
    for name in ("max_tokens", "max_completion_tokens"):
        optional_count(body, name, maximum=MAX_TOKENS_LIMIT)
    optional_count(body, "n", maximum=MAX_CHOICES)
    stream, include_usage = _streaming(body)
    return ChatRequest(model=model, body=body, stream=stream, include_usage=include_usage)


def parse_model(body: dict[str, Any]) -> str:
    """``model``: the ledger and response headers copy it, so it must be safe to copy."""
    model = _required_string(body, "model")
    if len(model) > MODEL_MAX_CHARS or not model.isprintable():
        raise InvalidRequest(
            f"Invalid 'model': expected at most {MODEL_MAX_CHARS} printable characters, without control characters.",
            param="model", code="invalid_value",
        )
    return model


def optional_count(body: dict[str, Any], name: str, *, maximum: int) -> int | None:
    """An optional whole number from 1 to ``maximum`` (a token cap, a number of choices)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(name, "an integer", value)
    if not 1 <= value <= maximum:
        raise InvalidRequest(f"Invalid '{name}': expected an integer from 1 to {maximum}, got {value}.",
                             param=name, code="invalid_value")
    return value


def _streaming(body: dict[str, Any]) -> tuple[bool, bool]:
    """``stream``, and whether the client asked for the usage chunk (only meaningful when streaming)."""
    stream = _optional(body, "stream", bool, "a boolean") or False
    stream_options = _optional(body, "stream_options", dict, "an object") or {}
    include_usage = stream_options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise _wrong_type("stream_options.include_usage", "a boolean", include_usage)
    return stream, stream and include_usage


def _required_string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise _missing(name)
    if not isinstance(value, str) or not value:
        raise _wrong_type(name, "a non-empty string", value)
    return value


def _optional(body: dict[str, Any], name: str, kind: type, described: str) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise _wrong_type(name, described, value)
    return value


def _check_messages(messages: object) -> None:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list) or not messages:
        raise _wrong_type("messages", "a non-empty array", messages)
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _wrong_type(f"messages[{index}]", "an object", message)
        if not isinstance(message.get("role"), str):
            raise _wrong_type(f"messages[{index}].role", "a string", message.get("role"))


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def _wrong_type(param: str, expected: str, value: object) -> InvalidRequest:
    got = "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, got {got}.", param=param, code="invalid_type"
    )


def parse_embeddings_request(request: HttpRequest) -> EmbeddingsRequest:
    body = parse_json_body(request)
    model = parse_model(body)
    value = body.get("input")
    if value is None:
        raise _missing("input")
    if not (isinstance(value, str) and value) and not (isinstance(value, list) and value):
        raise _wrong_type("input", "a non-empty string or array", value)
    return EmbeddingsRequest(model=model, body=body)


def parse_completion_request(request: HttpRequest) -> CompletionRequest:
    """The legacy endpoint: ``prompt`` instead of ``messages``, the rest as chat."""
    body = parse_json_body(request)
    model = parse_model(body)
    prompt = body.get("prompt")
    if prompt is None:
        raise _missing("prompt")
    if not isinstance(prompt, str | list):
        raise _wrong_type("prompt", "a string or an array", prompt)
    optional_count(body, "max_tokens", maximum=MAX_TOKENS_LIMIT)
    for name in ("n", "best_of"):
        optional_count(body, name, maximum=MAX_CHOICES)
    stream, include_usage = _streaming(body)
    return CompletionRequest(model=model, body=body, stream=stream, include_usage=include_usage)
