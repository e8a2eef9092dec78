"""OpenAI chat completion request → Gemini ``generateContent`` request.

System and developer messages become ``systemInstruction``; the history becomes ``contents``
(assistant → ``model``), with images as ``inlineData`` (data: URLs) or ``fileData`` (other URLs),
tool calls as ``functionCall`` and tool results as ``functionResponse`` (named after the call
they answer). Tools become ``functionDeclarations`` with their JSON schema as
``parametersJsonSchema``; tool_choice becomes ``toolConfig``; temperature, top_p, max tokens,
stop, n, seed, the penalties and response_format become ``generationConfig``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.providers.adapters.openai_messages import image_source, json_arguments, text_of

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
    if body.get("tools"):
        out["tools"] = [{"functionDeclarations": [_declaration(tool) for tool in body["tools"]
                                                  if isinstance(tool, dict)]}]
    if tool_config := _tool_config(body.get("tool_choice")):
        out["toolConfig"] = tool_config
    if config := generation_config(body):
        out["generationConfig"] = config
    return out


def generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config = {theirs: body[ours] for ours, theirs in GENERATION_CONFIG.items() if body.get(ours) is not None}
    if max_tokens := body.get("max_completion_tokens") or body.get("max_tokens"):
        config["maxOutputTokens"] = max_tokens
    if stop := body.get("stop"):
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format") or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    schema = (response_format.get("json_schema") or {}).get("schema")
    if response_format.get("type") == "json_schema" and schema:
        config["responseJsonSchema"] = schema
    return config


def _contents(messages: list[Any]) -> list[dict[str, Any]]:
    names = {call.get("id"): (call.get("function") or {}).get("name", "")
             for message in messages if message.get("role") == "assistant"
             for call in message.get("tool_calls") or []}
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        role, parts = ("model", _model_parts(message)) if role == "assistant" else ("user", _user_parts(message, names))
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)  # responses to parallel calls share one turn
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _user_parts(message: Mapping[str, Any], names: Mapping[Any, str]) -> list[dict[str, Any]]:
    if message.get("role") == "tool":
        text = text_of(message.get("content"))
        return [{"functionResponse": {"name": names.get(message.get("tool_call_id"), ""),
                                      "response": _response_object(text)}}]
    content = message.get("content")
    if isinstance(content, str):
        return [{"text": content}]
    return [part for item in content or [] if (part := _part(item)) is not None]


def _model_parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if text := text_of(message.get("content")):
        parts.append({"text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        call = {"name": function.get("name", ""), "args": json_arguments(function.get("arguments"))}
        parts.append({"functionCall": call})
    return parts


def _part(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    if item.get("type") == "text":
        return {"text": item.get("text", "")}
    if item.get("type") == "image_url":
        source = image_source(str((item.get("image_url") or {}).get("url", "")))
        if source["type"] == "base64":
            return {"inlineData": {"mimeType": source["media_type"], "data": source["data"]}}
        return {"fileData": {"mimeType": _guess_mime(source["url"]), "fileUri": source["url"]}}
    return None


def _declaration(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
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
