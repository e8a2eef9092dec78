"""OpenAI chat completion request → Gemini ``generateContent`` request.

System and developer messages become ``systemInstruction``; the history becomes ``contents``
(assistant → ``model``), with images as ``inlineData`` (data: URLs) or ``fileData`` (other URLs),
tool calls as ``functionCall`` (with the ``thoughtSignature`` Gemini gave them, carried in the tool
call's ``extra_content``) and tool results as ``functionResponse`` (named after the call they
answer). Tools become ``functionDeclarations`` with their JSON schema as
``parametersJsonSchema``; tool_choice becomes ``toolConfig`` (``allowed_tools`` offers the allowed
functions alone); temperature, top_p, max tokens, stop, n, seed, the penalties and response_format
become ``generationConfig``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.providers.adapters.openai_messages import (
    image_source,
    image_url_of,
    json_arguments,
    object_at,
    offered_functions,
    parts_of,
    stop_sequences,
    text_of,
    tool_calls_of,
)

GENERATION_CONFIG = {
    "temperature": "temperature", "top_p": "topP", "n": "candidateCount", "seed": "seed",
    "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty",
}
MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def generate_body(body: Mapping[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or []
    out: dict[str, Any] = {"contents": _contents(messages)}
    system = [text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
    if any(system):
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(text for text in system if text)}]}
    functions, choice = offered_functions(body)
    if functions:
        out["tools"] = [{"functionDeclarations": [_declaration(function) for function in functions]}]
    if tool_config := _tool_config(choice):
        out["toolConfig"] = tool_config
    if config := generation_config(body):
        out["generationConfig"] = config
    return out


def generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config = {theirs: body[ours] for ours, theirs in GENERATION_CONFIG.items() if body.get(ours) is not None}
    if max_tokens := body.get("max_completion_tokens") or body.get("max_tokens"):
        config["maxOutputTokens"] = max_tokens
    if stop := body.get("stop"):
        config["stopSequences"] = stop_sequences(stop)
    response_format = object_at(body.get("response_format"), "response_format")
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    schema = object_at(response_format.get("json_schema"), "response_format.json_schema").get("schema")
    if response_format.get("type") == "json_schema" and schema:
        config["responseJsonSchema"] = schema
    return config


def _contents(messages: list[Any]) -> list[dict[str, Any]]:
    names = {call.get("id"): function.get("name", "")
             for index, message in enumerate(messages) if message.get("role") == "assistant"
             for call, function in tool_calls_of(message, f"messages[{index}]")}
    contents: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role, where = message.get("role"), f"messages[{index}]"
        if role in ("system", "developer"):
            continue
        if role == "assistant":
            role, parts = "model", _model_parts(message, where)
        else:
            role, parts = "user", _user_parts(message, where, names)
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)  # responses to parallel calls share one turn
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _user_parts(message: Mapping[str, Any], where: str, names: Mapping[Any, str]) -> list[dict[str, Any]]:
    if message.get("role") == "tool":
        text = text_of(message.get("content"))
        return [{"functionResponse": {"name": names.get(message.get("tool_call_id"), ""),
                                      "response": _response_object(text)}}]
    items = parts_of(message.get("content"), f"{where}.content")
    parts = (_part(item, f"{where}.content[{index}]") for index, item in enumerate(items))
    return [part for part in parts if part is not None]


def _model_parts(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if text := text_of(message.get("content")):
        parts.append({"text": text})
    for call, function in tool_calls_of(message, where):
        part: dict[str, Any] = {"functionCall": {"name": function.get("name", ""),
                                                 "args": json_arguments(function.get("arguments"))}}
        if signature := _thought_signature(call):
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _thought_signature(call: Mapping[str, Any]) -> str | None:
    """The signature response.py gave the call (``extra_content.google.thought_signature``), if it came back."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _part(item: Any, where: str) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    if item.get("type") == "text":
        return {"text": item.get("text", "")}
    if item.get("type") == "image_url":
        source = image_source(image_url_of(item, where))
        if source["type"] == "base64":
            return {"inlineData": {"mimeType": source["media_type"], "data": source["data"]}}
        return {"fileData": {"mimeType": _guess_mime(source["url"]), "fileUri": source["url"]}}
    return None


def _declaration(function: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": function.get("name", "")}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parametersJsonSchema"] = function["parameters"]
    return out


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if isinstance(choice, str) and choice in MODES:
        return {"functionCallingConfig": {"mode": MODES[choice]}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name", "")]}}
    return None


def _response_object(text: str) -> dict[str, Any]:
    """functionResponse.response must be an object: a JSON object result as is, anything else wrapped."""
    parsed = json_arguments(text)
    return parsed if isinstance(parsed, dict) and parsed else {"content": text}



def _guess_mime(url: str) -> str:
    extension = url.rsplit(".", 1)[-1].lower().split("?")[0]
    return {"png": "image/png", "gif": "image/gif", "webp": "image/webp"}.get(extension, "image/jpeg")
