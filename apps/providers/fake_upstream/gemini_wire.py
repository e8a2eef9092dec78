"""Google Gemini's wire format: generateContent, its SSE stream, batchEmbedContents, and errors.

As in the real API, the model is named in the path (``/v1beta/models/{model}:generateContent``),
``usageMetadata.promptTokenCount`` includes ``cachedContentTokenCount``, tool calls are
``functionCall`` parts without ids but with a ``thoughtSignature`` (as Gemini 3 sends them), and
``streamGenerateContent?alt=sse`` sends whole responses as ``data:`` events with no terminator, the
last one carrying ``finishReason`` and usage.
"""

from __future__ import annotations

from typing import Any

from .content import Answer, compose_answer, count_words, embedding_vector
from .directives import JsonOutput, OfferedTool, ToolChoice, choose_tool
from .replies import JsonReply, Payload, ProviderError, SseEvent, SseReply
from .rules import Knobs

MODEL_VERSION_SUFFIX = "-fake-001"
# Gemini 3 signs each function call (opaque bytes, base64) and wants the signature back with the call.
THOUGHT_SIGNATURE = "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="
DEFAULT_DIMENSIONS = 16

# status -> (error.status, default message), as Google sends them.
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


def error_reply(status: int, message: str | None = None, *, param: str | None = None,
                retry_after: int | None = None) -> JsonReply:
    error_status, default_message = _ERRORS.get(status, ("UNKNOWN", f"Fake upstream failure (HTTP {status})."))
    if message and param:
        message = f"{param}: {message}"
    headers = (("retry-after", str(retry_after)),) if retry_after is not None else ()
    return JsonReply({"error": {"code": status, "message": message or default_message, "status": error_status}},
                     status=status, headers=headers)


def generate_content(model: str, body: Payload, knobs: Knobs, *, stream: bool) -> JsonReply | SseReply:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise ProviderError(400, "contents is not specified", param="contents")
    config = body.get("generationConfig") or {}
    answer = compose_answer(
        prompt_text=_last_user_text(contents), prompt_tokens=_prompt_tokens(body), knobs=knobs,
        max_tokens=config.get("maxOutputTokens"),
        tool_use=choose_tool(_offered_tools(body), _tool_choice(body), knobs), json_output=_json_output(config),
    )
    if stream:
        return _stream(model, answer, knobs)
    response = _response(model, answer, _parts(answer), finish=True, knobs=knobs)
    return JsonReply(response, essential_field="candidates")


def batch_embed(model: str, body: Payload, knobs: Knobs) -> JsonReply:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise ProviderError(400, "requests is not specified", param="requests")
    embeddings = []
    for request in requests:
        text = " ".join(_texts((request.get("content") or {}).get("parts")))
        size = request.get("outputDimensionality") or DEFAULT_DIMENSIONS
        embeddings.append({"values": embedding_vector(text, size)})
    return JsonReply({"embeddings": embeddings}, essential_field="embeddings")


def _response(model: str, answer: Answer, parts: list[Payload], *, finish: bool, knobs: Knobs) -> Payload:
    candidate: Payload = {"content": {"parts": parts, "role": "model"}, "index": 0}
    response: Payload = {"candidates": [candidate], "modelVersion": model + MODEL_VERSION_SUFFIX,
                         "responseId": "fake-gemini-response"}
    if finish:
        candidate["finishReason"] = "MAX_TOKENS" if answer.truncated else "STOP"
        if not knobs.no_usage:
            response["usageMetadata"] = _usage(answer)
    return response


def _stream(model: str, answer: Answer, knobs: Knobs) -> SseReply:
    if answer.tool_use is not None:
        pieces: list[list[Payload]] = [_parts(answer)]
    else:
        pieces = [[{"text": text}] for text in answer.deltas(knobs.stream_chunks)]
    events = [SseEvent(_response(model, answer, parts, finish=False, knobs=knobs)) for parts in pieces]
    last = SseEvent(_response(model, answer, [{"text": ""}], finish=True, knobs=knobs))
    return SseReply(head=[], content=events, tail=[last], essential_field="candidates")


def _parts(answer: Answer) -> list[Payload]:
    if answer.tool_use is not None:
        call = {"name": answer.tool_use.name, "args": answer.tool_use.arguments}
        return [{"functionCall": call, "thoughtSignature": THOUGHT_SIGNATURE}]
    return [{"text": answer.text}]


def _usage(answer: Answer) -> Payload:
    usage: Payload = {"promptTokenCount": answer.prompt_tokens, "candidatesTokenCount": answer.completion_tokens,
                      "totalTokenCount": answer.prompt_tokens + answer.completion_tokens}
    if answer.cached_tokens:
        usage["cachedContentTokenCount"] = answer.cached_tokens
    return usage


def _offered_tools(body: Payload) -> list[OfferedTool]:
    declarations = [declaration for tool in body.get("tools") or [] if isinstance(tool, dict)
                    for declaration in tool.get("functionDeclarations") or [] if isinstance(declaration, dict)]
    return [OfferedTool(str(d.get("name")), d.get("parametersJsonSchema") or d.get("parameters"))
            for d in declarations if isinstance(d.get("name"), str)]


def _tool_choice(body: Payload) -> ToolChoice:
    """``toolConfig.functionCallingConfig``: mode ANY (with ``allowedFunctionNames``), NONE, or AUTO."""
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    allowed = calling.get("allowedFunctionNames")
    names = tuple(str(name) for name in allowed) if isinstance(allowed, list) else ()
    mode = str(calling.get("mode") or "AUTO").upper()
    if mode == "ANY":
        return ToolChoice("required", names)
    return ToolChoice("none") if mode == "NONE" else ToolChoice("auto", names)


def _json_output(config: Payload) -> JsonOutput | None:
    """JSON mode: ``responseMimeType: application/json``, with ``responseJsonSchema`` or ``responseSchema``."""
    if config.get("responseMimeType") != "application/json":
        return None
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    return JsonOutput(schema if isinstance(schema, dict) else None)


def _prompt_tokens(body: Payload) -> int:
    """Words of every text part, + 3 per content; the system instruction adds its words."""
    system = (body.get("systemInstruction") or {}).get("parts")
    tokens = count_words(" ".join(_texts(system)))
    for content in body.get("contents") or []:
        parts = content.get("parts") if isinstance(content, dict) else None
        tokens += count_words(" ".join(_texts(parts))) + 3
    return tokens


def _texts(parts: Any) -> list[str]:
    texts = []
    for part in parts or []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, dict) and isinstance(part.get("functionResponse"), dict):
            texts.append(str((part["functionResponse"].get("response") or {}).get("content", "")))
    return texts


def _last_user_text(contents: list[Any]) -> str:
    for content in reversed(contents):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            return " ".join(_texts(content.get("parts")))
    return ""
