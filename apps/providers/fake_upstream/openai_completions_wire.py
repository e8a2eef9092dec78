"""OpenAI's legacy /v1/completions endpoint, JSON and streamed, with chat's usage rules."""

from __future__ import annotations

import time
from typing import Any

from .content import (
    Answer,
    compose_answer,
    embedding_input_tokens,
    new_id,
    split_into_deltas,
)
from .openai_wire import (
    DONE,
    FINGERPRINT,
    ChunkMaker,
    choice_count,
    finish_reason,
    required_text,
    wants_stream_usage,
)
from .replies import JsonReply, Payload, ProviderError, SseEvent, SseReply
from .rules import Knobs


def completion(body: Payload, knobs: Knobs) -> JsonReply | SseReply:
    """The legacy /v1/completions endpoint: one choice per prompt per `n`."""
    model = required_text(body, "model")
    choices = choice_count(body)
    prompts = _prompts(body.get("prompt"))
    answers = [
        compose_answer(prompt_text=text, prompt_tokens=tokens, knobs=knobs,
                       max_tokens=body.get("max_tokens"), tool_use=None)
        for text, tokens in prompts
        for _ in range(choices)
    ]
    usage = _completion_usage(sum(tokens for _, tokens in prompts), answers)
    if body.get("stream"):
        include_usage = wants_stream_usage(body) and not knobs.no_usage
        return _completion_stream(model, answers, knobs, usage if include_usage else None)
    payload = {
        "id": new_id("cmpl-"), "object": "text_completion", "created": int(time.time()),
        "model": model, "system_fingerprint": FINGERPRINT,
        "choices": [{"text": answer.text, "index": index, "logprobs": None,
                     "finish_reason": finish_reason(answer)}
                    for index, answer in enumerate(answers)],
        "usage": usage,
    }
    if knobs.no_usage:
        del payload["usage"]
    return JsonReply(payload, essential_field="choices")


def _prompts(prompt: object) -> list[tuple[str, int]]:
    """(text, prompt tokens) per prompt; a prompt may be text or an array of token ids."""
    if isinstance(prompt, str) or (isinstance(prompt, list) and prompt
                                   and all(isinstance(t, int) for t in prompt)):
        items: list[Any] = [prompt]
    elif isinstance(prompt, list) and prompt:
        items = prompt
    else:
        raise ProviderError(400, "'prompt' must be a string or a non-empty array.",
                            param="prompt")
    return [(item if isinstance(item, str) else "", embedding_input_tokens(item))
            for item in items]


def _completion_usage(prompt_tokens: int, answers: list[Answer]) -> Payload:
    completion_tokens = sum(a.completion_tokens for a in answers)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _completion_stream(model: str, answers: list[Answer], knobs: Knobs,
                       usage: Payload | None) -> SseReply:
    maker = ChunkMaker({
        "id": new_id("cmpl-"), "object": "text_completion", "created": int(time.time()),
        "model": model, "system_fingerprint": FINGERPRINT,
    }, include_usage=usage is not None)

    def chunk(index: int, text: str, finish: str | None = None) -> SseEvent:
        return maker.event([{"text": text, "index": index, "logprobs": None,
                             "finish_reason": finish}])

    deltas = [split_into_deltas(answer.words, knobs.stream_chunks) for answer in answers]
    tail = [chunk(i, "", finish_reason(answer)) for i, answer in enumerate(answers)]
    if usage is not None:
        tail.append(maker.usage_event(usage))
    return SseReply(
        head=[],
        content=[chunk(i, text) for i, texts in enumerate(deltas) for text in texts],
        tail=[*tail, DONE],
        essential_field="choices",
    )
