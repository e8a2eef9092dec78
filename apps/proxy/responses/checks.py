"""Small validators for a Responses request: each refusal is OpenAI's 400 naming the parameter."""

from __future__ import annotations

from typing import Any

from apps.proxy.errors import InvalidRequest

JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def wrong_type(param: str, expected: str, value: object) -> InvalidRequest:
    got = "null" if value is None else JSON_TYPES.get(type(value), type(value).__name__)
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}, got {got}.", param=param,
                          code="invalid_type")


def invalid_value(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': {message}", param=param, code="invalid_value")


def unsupported(param: str, what: str) -> InvalidRequest:
    """Something only OpenAI's own Responses API serves, sent to a model no ``openai`` deployment serves."""
    return InvalidRequest(
        f"'{param}': {what} is served only by OpenAI's own Responses API, and no OpenAI deployment could take "
        "this request.", param=param, code="unsupported_parameter")


def object_at(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise wrong_type(param, "an object", value)
    return value


def array_at(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise wrong_type(param, "an array", value)
    return value


def string_at(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(param, "a string", value)
    return value


def optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...], described: str) -> Any:
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind))):
        raise wrong_type(name, described, value)
    return value


def optional_number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = optional(body, name, (int, float), "a number")
    if value is not None and not low <= value <= high:
        raise invalid_value(name, f"expected a number from {low:g} to {high:g}, got {value}.")
    return None if value is None else float(value)


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
