"""What a request asks of the reply's form, in any wire format: call a tool, or answer in JSON.

Each wire module reads its own fields into these and the reply follows one set of rules:

* Tool calls. With tools offered, the fake calls one when the request forces it (OpenAI's
  ``tool_choice: "required"`` or a named function, Anthropic's ``{"type": "any"}`` or
  ``{"type": "tool"}``, Gemini's ``mode: ANY``, optionally with ``allowedFunctionNames``), or, when
  the choice is left to the model (``auto`` or absent), when the model's rule has ``tool_call`` on.
  A "none" choice never calls. The tool called is the named one, else the first offered (the first
  allowed one on Gemini); its arguments are ``schemas.example_of`` its parameter schema.
* JSON replies. Without a tool call, a request for structured output (OpenAI's ``response_format``
  ``json_schema`` / ``json_object``, Anthropic's ``output_config.format`` or the older
  ``output_format``, Gemini's ``responseMimeType: application/json`` with ``responseJsonSchema`` or
  ``responseSchema``) is answered with the example of its schema, or for a bare JSON-object request
  ``{"answer": "<the text reply>"}``; as JSON text with the usual single spaces after ``,`` and ``:``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from .rules import Knobs
from .schemas import example_of

ToolMode = Literal["auto", "none", "required"]


@dataclass(frozen=True)
class ToolUse:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class OfferedTool:
    name: str
    schema: object  # the parameters' JSON schema as the request gave it


@dataclass(frozen=True)
class ToolChoice:
    mode: ToolMode = "auto"
    names: tuple[str, ...] = ()  # the tools it may call; empty = any offered


@dataclass(frozen=True)
class JsonOutput:
    schema: dict[str, Any] | None  # None: any JSON object will do


def choose_tool(offered: list[OfferedTool], choice: ToolChoice, knobs: Knobs) -> ToolUse | None:
    """The call the reply makes, if any (see the module docstring for the rules)."""
    if not offered or choice.mode == "none":
        return None
    if choice.mode == "auto" and not knobs.tool_call:
        return None
    allowed = [tool for tool in offered if not choice.names or tool.name in choice.names]
    if not allowed:
        return None
    tool = allowed[0]
    arguments = example_of(tool.schema) if isinstance(tool.schema, dict) else {}
    return ToolUse(tool.name, arguments if isinstance(arguments, dict) else {})


def json_reply_text(output: JsonOutput, text_reply: str) -> str:
    value = example_of(output.schema) if output.schema is not None else {"answer": text_reply}
    return json.dumps(value, ensure_ascii=False)
