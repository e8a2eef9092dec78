"""What a handler answers, before the server turns it into bytes (and maybe breaks it).

Handlers stay unaware of most fault knobs: they say which field a
`missing_fields` fault should drop, and the server does the breaking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

Payload = dict[str, Any]
Headers = tuple[tuple[str, str], ...]


class ProviderError(Exception):
    """A request the provider refuses; each wire format renders it in its own error shape."""

    def __init__(self, status: int, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


@dataclass(frozen=True)
class JsonReply:
    payload: Payload | list[Payload]
    status: int = 200
    headers: Headers = ()
    # The field a `missing_fields` fault removes, e.g. "choices".
    essential_field: str | None = None


@dataclass(frozen=True)
class TextReply:
    text: str
    status: int = 200


@dataclass(frozen=True)
class SseEvent:
    data: Payload | str  # a str is sent verbatim, as OpenAI's "[DONE]" is
    name: str | None = None

    def encode(self) -> bytes:
        data = self.data.encode() if isinstance(self.data, str) else orjson.dumps(self.data)
        if self.name is None:
            return b"data: %b\n\n" % data
        return b"event: %b\ndata: %b\n\n" % (self.name.encode(), data)


@dataclass(frozen=True)
class SseReply:
    """A stream split into head, content and tail, so faults can target the content."""

    head: list[SseEvent]
    content: list[SseEvent]
    tail: list[SseEvent]
    # The field a `missing_fields` fault removes from each content event.
    essential_field: str | None = None


Reply = JsonReply | TextReply | SseReply
