"""Recorded provider responses replayed at the one HTTP seam (``apps.providers.http.use_transport``).

A ``Replay`` answers every request with the next recorded response and keeps what the adapter
sent, so a test can check the request translation and the answer translation in one go. SSE
bodies are delivered in small pieces, so adapters must reassemble events split across reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

from apps.providers.contracts import ChatStream, StreamEvent, Upstream
from apps.providers.http import use_transport

TRANSCRIPTS = Path(__file__).parent / "transcripts"
PIECE_BYTES = 17  # awkward on purpose: events and lines split anywhere
T = TypeVar("T")


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def upstream(kind: str, base_url: str, *, api_version: str = "") -> Upstream:
    return Upstream(provider_id=1, provider_name="recorded", kind=kind, base_url=base_url, api_key="sk-recorded",
                    headers={"X-Team": "ml"}, timeout_s=5, api_version=api_version)


class _Pieces(httpx.AsyncByteStream):
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), PIECE_BYTES):
            yield self.body[start:start + PIECE_BYTES]


@dataclass
class Replay:
    """Answers with ``transcript`` (a file name) and ``status``; records each request."""

    transcript: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    sent: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        body = transcript(self.transcript)
        if self.transcript.endswith(".sse"):
            return httpx.Response(self.status, headers={"content-type": "text/event-stream", **self.headers},
                                  stream=_Pieces(body))
        return httpx.Response(self.status, headers={"content-type": "application/json", **self.headers}, content=body)

    def run(self, call: Callable[[], Awaitable[T]]) -> T:
        async def inside() -> T:
            with use_transport(httpx.MockTransport(self.handle)):
                return await call()
        return asyncio.run(inside())

    @property
    def request(self) -> httpx.Request:
        return self.sent[-1]

    @property
    def body(self) -> Any:
        return orjson.loads(self.request.content)


async def drain(stream: ChatStream) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    try:
        async for batch in stream.events:
            events.extend(batch)
    finally:
        await stream.close()
    return events


def chunks(events: list[StreamEvent]) -> list[dict[str, Any]]:
    """The JSON chunks of a translated stream (the [DONE] frame left out)."""
    return [orjson.loads(event.frame[6:]) for event in events if event.frame != b"data: [DONE]\n\n"]
