"""A value that fits a JSON schema: the fake's tool-call arguments and structured outputs.

Deterministic, so tests can assert exact values: a string is "mock", an integer 1, a number 1.5, a
boolean true, an array one item, an object its required properties; an enum or const gives its first
value. Bounds move a value inside them (minimum/maximum and their exclusive forms, multipleOf,
minLength/maxLength, minItems/maxItems, minProperties), and a few string formats get a value of
their form. Local ``$ref``s (Pydantic's ``#/$defs/…``) are followed; ``anyOf``/``oneOf`` take their
first non-null branch, ``allOf`` merges its branches. Gemini's OpenAPI-style schemas (upper-case
types, ``nullable``) read the same. ``pattern`` is not honoured: no generator fits every regex.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard, TypeVar

# Deep enough for any real tool schema; stops a recursive $ref (a tree of nodes) from looping.
MAX_DEPTH = 12
# Below this depth an array holds only the items it must, so a recursive schema's example ends.
FILL_ARRAYS_ABOVE_DEPTH = 4
STRING_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z", "date": "2026-01-01", "time": "00:00:00Z",
    "email": "mock@example.com", "uri": "https://example.com/mock", "url": "https://example.com/mock",
    "uuid": "00000000-0000-4000-8000-000000000000", "ipv4": "192.0.2.1", "ipv6": "2001:db8::1",
    "hostname": "example.com", "duration": "P1D",
}
Schema = dict[str, Any]
T = TypeVar("T", dict[str, Any], list[Any])


def example_of(schema: object) -> Any:
    """A value that `schema` accepts (for an unusable schema, an empty object)."""
    if not isinstance(schema, dict):
        return {}
    return _Generator(schema).value(schema, 0)


class _Generator:
    def __init__(self, root: Schema) -> None:
        self.root = root

    def value(self, schema: object, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return None
        schema = self.resolved(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        if branch := _first_branch(schema):
            return self.value({**_without_branches(schema), **branch}, depth + 1)
        if isinstance(schema.get("allOf"), list):
            return self.value(self.merged(schema), depth + 1)
        kind = _type_of(schema)
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth)
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return _string(schema)

    def resolved(self, schema: Schema) -> Schema:
        """`schema` with its local ``$ref`` replaced by what it points at (siblings kept)."""
        seen: set[str] = set()
        while isinstance(ref := schema.get("$ref"), str) and ref.startswith("#") and ref not in seen:
            seen.add(ref)
            target: Any = self.root
            for token in filter(None, ref[1:].split("/")):
                token = token.replace("~1", "/").replace("~0", "~")
                target = target.get(token) if isinstance(target, dict) else None
            if not isinstance(target, dict):
                break
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def merged(self, schema: Schema) -> Schema:
        out: Schema = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if not isinstance(part, dict):
                continue
            part = self.resolved(part)
            properties = {**(out.get("properties") or {}), **(part.get("properties") or {})}
            required = [*(out.get("required") or []), *(part.get("required") or [])]
            out = {**out, **part, "properties": properties, "required": list(dict.fromkeys(required))}
        return out

    def object(self, schema: Schema, depth: int) -> dict[str, Any]:
        properties = _field(schema, "properties", dict)
        names = [name for name in schema.get("required") or [] if isinstance(name, str)]
        wanted = schema.get("minProperties")
        if isinstance(wanted, int):
            names += [name for name in properties if name not in names][: max(0, wanted - len(names))]
        return {name: self.value(properties.get(name, {"type": "string"}), depth + 1) for name in names}

    def array(self, schema: Schema, depth: int) -> list[Any]:
        prefix = _field(schema, "prefixItems", list)
        least = 1 if depth < FILL_ARRAYS_ABOVE_DEPTH else 0
        count = max(_whole(schema.get("minItems"), least), len(prefix))
        if isinstance(schema.get("maxItems"), int):
            count = min(count, schema["maxItems"])
        items = _field(schema, "items", dict)
        values = [self.value(prefix[i] if i < len(prefix) else items, depth + 1) for i in range(count)]
        if schema.get("uniqueItems"):
            values = [_varied(value, i) for i, value in enumerate(values)]
        return values


def _field(schema: Schema, name: str, kind: type[T]) -> T:
    """``schema[name]`` if it is a `kind`, else an empty one."""
    value = schema.get(name)
    return value if isinstance(value, kind) else kind()


def _type_of(schema: Schema) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if isinstance(k, str) and k.lower() != "null"), "null")
    if isinstance(kind, str):
        return kind.lower()  # Gemini's OpenAPI schemas say OBJECT, STRING…
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _first_branch(schema: Schema) -> Schema | None:
    for keyword in ("anyOf", "oneOf"):
        branches = [b for b in schema.get(keyword) or [] if isinstance(b, dict)]
        if branches:
            return next((b for b in branches if b.get("type") != "null"), branches[0])
    return None


def _without_branches(schema: Schema) -> Schema:
    return {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}


def _string(schema: Schema) -> str:
    text = STRING_FORMATS.get(str(schema.get("format")), "mock")
    shortest, longest = _whole(schema.get("minLength"), 0), schema.get("maxLength")
    if len(text) < shortest:
        text = (text * math.ceil(shortest / len(text)))[:shortest]
    if isinstance(longest, int) and len(text) > longest:
        text = text[: max(longest, shortest)]
    return text


def _number(schema: Schema, *, integer: bool) -> int | float:
    step = 1 if integer else 0.5  # how far inside an exclusive bound to go
    low = _bound(schema, "minimum", "exclusiveMinimum", +step)
    high = _bound(schema, "maximum", "exclusiveMaximum", -step)
    value: float = 1 if integer else 1.5
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high if low is None else (low + high) / 2
    multiple = schema.get("multipleOf")
    if _is_number(multiple) and multiple > 0:
        value = math.ceil(value / multiple) * multiple
        if high is not None and value > high:
            value -= multiple
    if integer:
        return int(math.ceil(value) if low is not None and value < low + 1 else math.floor(value))
    return float(value)


def _bound(schema: Schema, inclusive: str, exclusive: str, inward: float) -> float | None:
    """The outermost value inside one bound, or None; an exclusive bound is stepped inside."""
    value, excluded = schema.get(inclusive), schema.get(exclusive)
    if _is_number(excluded):  # draft 6 and later: the exclusive bound is a number of its own
        return float(excluded) + inward
    if _is_number(value):  # draft 4: exclusiveMinimum/Maximum is a flag beside the bound
        return float(value) + (inward if excluded is True else 0)
    return None


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _varied(value: Any, index: int) -> Any:
    """The index-th of several otherwise equal items, made distinct for uniqueItems where it can be."""
    if index == 0:
        return value
    if isinstance(value, str):
        return f"{value}{index + 1}"
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + index
    if isinstance(value, list) and value:
        return [_varied(value[0], index), *value[1:]]
    if isinstance(value, dict) and value:
        first = next(iter(value))
        return {**value, first: _varied(value[first], index)}
    return value
