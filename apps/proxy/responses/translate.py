"""A Responses request → the chat completion body every adapter speaks (``ChatRequest``).

``instructions`` becomes a system message, input messages chat messages (``developer`` as ``system``;
``input_text``/``output_text`` parts as text, ``input_image`` as ``image_url``), ``function_call`` items
an assistant message's ``tool_calls`` (consecutive calls share one message), ``function_call_output``
items tool messages; function tools, ``tool_choice``, ``text.format`` (as ``response_format``),
``max_output_tokens``, ``temperature``, ``top_p``, ``parallel_tool_calls``, ``user`` and ``reasoning.effort``
map to their chat names. Reasoning items without encrypted content are the model's own notes and are left out.

What has no chat counterpart (built-in tools, file inputs, encrypted reasoning, item references, …) is
collected, not refused: the translation is still made, for token estimates, and ``Translation.problem``
is the 400 a non-OpenAI deployment answers with (an OpenAI deployment gets the request as sent). In a
stored conversation's earlier turns, what an OpenAI deployment did that chat cannot carry (a web search
call, reasoning) is left out instead: the turn's messages already say what came of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.proxy.errors import InvalidRequest
from apps.proxy.responses.checks import unsupported

PARAMETERS = {"temperature": "temperature", "top_p": "top_p", "max_output_tokens": "max_tokens",
              "parallel_tool_calls": "parallel_tool_calls"}
# Request parameters only OpenAI's own Responses API acts on.
OPENAI_ONLY = {"conversation": "a conversation stored by OpenAI", "prompt": "a prompt template stored by OpenAI"}


@dataclass(frozen=True, slots=True)
class Translation:
    chat: dict[str, Any]
    problem: InvalidRequest | None  # the first thing a chat completion cannot carry


class Translator:
    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict  # False: leave out what chat cannot carry, without refusing (earlier turns)
        self.problems: list[InvalidRequest] = []

    def refuse(self, param: str, what: str) -> None:
        if self.strict:
            self.problems.append(unsupported(param, what))

    def translate(self, body: dict[str, Any], model: str, items: list[dict[str, Any]], *, stream: bool,
                  history: list[dict[str, Any]] | None = None) -> Translation:
        """``items`` are this request's input; ``history`` the stored conversation it continues, whose
        built-in tool calls and reasoning an earlier OpenAI turn made are left out rather than refused."""
        messages = [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
        messages.extend(Translator(strict=False).messages(history or []))
        messages.extend(self.messages(items))
        chat: dict[str, Any] = {"model": model, "messages": messages}
        chat.update({ours: body[theirs] for theirs, ours in PARAMETERS.items() if body.get(theirs) is not None})
        if tools := self.tools(body.get("tools") or []):
            chat["tools"] = tools
        if (choice := self.tool_choice(body.get("tool_choice"))) is not None:
            chat["tool_choice"] = choice
        if (response_format := _response_format(body.get("text"))) is not None:
            chat["response_format"] = response_format
        if isinstance(user := body.get("safety_identifier") or body.get("user"), str):
            chat["user"] = user
        if isinstance(reasoning := body.get("reasoning"), dict) and isinstance(reasoning.get("effort"), str):
            chat["reasoning_effort"] = reasoning["effort"]  # OpenAI-wire kinds carry it; the others' adapters drop it
        for name, what in OPENAI_ONLY.items():
            if body.get(name):
                self.refuse(name, what)
        if stream:
            chat["stream"] = True
            chat["stream_options"] = {"include_usage": True}
        return Translation(chat=chat, problem=self.problems[0] if self.problems else None)

    def messages(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            param, kind = f"input[{index}]", item.get("type", "message")
            if kind == "message":
                out.append(self.message(item, param))
            elif kind == "function_call":
                call = {"id": item["call_id"], "type": "function",
                        "function": {"name": item["name"], "arguments": item["arguments"]}}
                if isinstance(item.get("extra_content"), dict):  # a thought signature Gemini gave the call
                    call["extra_content"] = item["extra_content"]
                if out and out[-1]["role"] == "assistant" and "tool_calls" in out[-1]:
                    out[-1]["tool_calls"].append(call)
                elif out and out[-1]["role"] == "assistant":
                    out[-1]["tool_calls"] = [call]
                else:
                    out.append({"role": "assistant", "content": None, "tool_calls": [call]})
            elif kind == "function_call_output":
                out.append({"role": "tool", "tool_call_id": item["call_id"], "content": self.output_text(item, param)})
            elif kind == "reasoning":
                if item.get("encrypted_content"):
                    self.refuse(f"{param}.encrypted_content", "a reasoning item with encrypted content")
            else:
                self.refuse(f"{param}.type", f"an input item of type '{kind}'")
        return out

    def message(self, item: dict[str, Any], param: str) -> dict[str, Any]:
        role = "system" if item["role"] == "developer" else item["role"]
        content = item["content"]
        if isinstance(content, str):
            return {"role": role, "content": content}
        parts = self.parts(content, f"{param}.content")
        if role != "user" or all(part["type"] == "text" for part in parts):
            # System and assistant messages are text in every chat dialect; text-only user content as well.
            return {"role": role, "content": "".join(part.get("text", "") for part in parts)}
        return {"role": role, "content": parts}

    def part(self, part: dict[str, Any], param: str) -> dict[str, Any] | None:
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            return {"type": "text", "text": part["text"]}
        if kind == "refusal":
            return {"type": "text", "text": part["refusal"]}
        if kind == "input_image" and isinstance(part.get("image_url"), str):
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail") in ("low", "high"):
                image["detail"] = part["detail"]
            return {"type": "image_url", "image_url": image}
        what = "an image given by file_id" if kind == "input_image" else f"a content part of type '{kind}'"
        self.refuse(f"{param}.type" if kind != "input_image" else f"{param}.file_id", what)
        return None

    def output_text(self, item: dict[str, Any], param: str) -> str:
        output = item.get("output")
        if isinstance(output, str):
            return output
        return "".join(part.get("text", "") for part in self.parts(output or [], f"{param}.output"))

    def parts(self, content: list[dict[str, Any]], param: str) -> list[dict[str, Any]]:
        translated = (self.part(part, f"{param}[{index}]") for index, part in enumerate(content))
        return [part for part in translated if part is not None]

    def tools(self, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        translated = (self.tool(tool, index) for index, tool in enumerate(tools))
        return [tool for tool in translated if tool is not None]

    def tool(self, tool: dict[str, Any], index: int) -> dict[str, Any] | None:
        if tool["type"] != "function":
            self.refuse(f"tools[{index}].type", f"the built-in tool '{tool['type']}'")
            return None
        function: dict[str, Any] = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object"}}
        if tool.get("description"):
            function["description"] = tool["description"]
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        return {"type": "function", "function": function}

    def tool_choice(self, choice: Any) -> Any:
        if choice is None or isinstance(choice, str):
            return choice
        if choice["type"] == "function":
            return {"type": "function", "function": {"name": choice["name"]}}
        self.refuse("tool_choice.type", f"a tool_choice of type '{choice['type']}'")
        return None


def _response_format(text: Any) -> dict[str, Any] | None:
    text_format = (text or {}).get("format") or {}
    if text_format.get("type") == "json_object":
        return {"type": "json_object"}
    if text_format.get("type") != "json_schema":
        return None
    schema = {"name": text_format["name"], "schema": text_format["schema"]}
    if isinstance(text_format.get("strict"), bool):
        schema["strict"] = text_format["strict"]
    if text_format.get("description"):
        schema["description"] = text_format["description"]
    return {"type": "json_schema", "json_schema": schema}
