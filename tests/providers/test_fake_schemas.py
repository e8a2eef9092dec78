"""The fake upstream's schema-to-example generator: every example is valid against its schema."""

from __future__ import annotations

from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from apps.providers.fake_upstream.schemas import example_of


class Step(BaseModel):
    explanation: str
    output: str


class Reasoning(BaseModel):
    steps: list[Step]
    final_answer: str
    confidence: float = Field(ge=0, le=1)
    mood: Literal["calm", "curious"]
    tags: list[str] = Field(min_length=2, max_length=3)
    nickname: str | None = None


class Tree(BaseModel):
    label: str
    children: list[Tree]


SCHEMAS: dict[str, dict[str, Any]] = {
    "a flat object": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "every scalar": {"type": "object", "required": ["s", "i", "n", "b", "z"], "properties": {
        "s": {"type": "string"}, "i": {"type": "integer"}, "n": {"type": "number"}, "b": {"type": "boolean"},
        "z": {"type": "null"}}},
    "bounds": {"type": "object", "required": ["low", "high", "between", "step", "word", "short"], "properties": {
        "low": {"type": "integer", "minimum": 10}, "high": {"type": "number", "maximum": -3},
        "between": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "step": {"type": "integer", "minimum": 10, "multipleOf": 7},
        "word": {"type": "string", "minLength": 9}, "short": {"type": "string", "maxLength": 2}}},
    "enums and consts": {"type": "object", "required": ["unit", "kind"], "properties": {
        "unit": {"enum": ["celsius", "fahrenheit"]}, "kind": {"const": "weather"}}},
    "nested arrays": {"type": "array", "minItems": 2, "maxItems": 4, "uniqueItems": True,
                      "items": {"type": "array", "items": {"type": "integer"}}},
    "unique strings": {"type": "array", "minItems": 3, "uniqueItems": True, "items": {"type": "string"}},
    "formats": {"type": "object", "required": ["when", "mail", "id"], "properties": {
        "when": {"type": "string", "format": "date-time"}, "mail": {"type": "string", "format": "email"},
        "id": {"type": "string", "format": "uuid"}}},
    "a nullable union": {"anyOf": [{"type": "null"}, {"type": "integer", "maximum": 0}]},
    "allOf": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                        {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]},
    "minProperties": {"type": "object", "minProperties": 2, "properties": {
        "a": {"type": "string"}, "b": {"type": "boolean"}}},
    "a Pydantic model with $defs": Reasoning.model_json_schema(),
    "a recursive Pydantic model": Tree.model_json_schema(),
}


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_its_example_is_valid_against_the_schema(schema: dict[str, Any]) -> None:
    example = example_of(schema)

    jsonschema.validate(example, schema, format_checker=jsonschema.FormatChecker())


def test_it_fills_a_pydantic_model_the_sdk_can_parse() -> None:
    reasoning = Reasoning.model_validate(example_of(Reasoning.model_json_schema()))

    assert reasoning.steps == [Step(explanation="mock", output="mock")]
    assert reasoning.mood == "calm" and 0 <= reasoning.confidence <= 1 and len(reasoning.tags) == 2


def test_it_reads_geminis_upper_case_openapi_types() -> None:
    schema = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}, "tags": {
        "type": "ARRAY", "items": {"type": "STRING"}}}, "required": ["n", "tags"]}

    assert example_of(schema) == {"n": 1, "tags": ["mock"]}


def test_a_schema_that_is_not_an_object_gives_an_empty_object() -> None:
    assert example_of("not a schema") == {}
