"""A response kept for replay, and its wire form in Redis.

The wire form is one JSON header line (status, headers, stream, truncated), a newline, and the body
exactly as the first client received it: a stream's SSE bytes are megabytes at worst, and are never
re-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

ENTRY_OVERHEAD_BYTES = 256  # the key, the fingerprint, the dataclasses and the LRU's bookkeeping, roughly


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a repeat of a request gets instead of running it again.

    ``truncated`` means the body is not the whole response and is never replayed: the pipeline sets
    it when it stopped buffering a stream past EDGE_IDEMPOTENCY_MAX_BYTES, and ``finish()`` keeps any
    longer response that way (headers and status only), so a repeat gets a 422 instead of a second
    provider call.
    """

    status: int
    headers: tuple[tuple[str, str], ...]  # content-type, x-request-id, x-edge-*, x-ratelimit-*
    body: bytes
    stream: bool  # replay as text/event-stream, chunked
    truncated: bool = False

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(name) + len(value) for name, value in self.headers) + ENTRY_OVERHEAD_BYTES

    def header(self, name: str) -> str:
        """The first value of header ``name`` (any case), or ""."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), "")

    def without_body(self) -> StoredResponse:
        return StoredResponse(self.status, self.headers, b"", self.stream, truncated=True)

    def to_bytes(self) -> bytes:
        header = {"status": self.status, "headers": self.headers, "stream": self.stream, "truncated": self.truncated}
        return orjson.dumps(header) + b"\n" + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> StoredResponse:
        """Raises ValueError (or TypeError, KeyError) for anything ``to_bytes()`` did not write."""
        header_line, _, body = data.partition(b"\n")
        header = orjson.loads(header_line)
        headers = tuple((str(name), str(value)) for name, value in header["headers"])
        return cls(int(header["status"]), headers, body, bool(header["stream"]), truncated=bool(header["truncated"]))


@dataclass(frozen=True, slots=True)
class Completed:
    """A completed request's record: its fingerprint (to tell a repeat from a reuse) and its response."""

    fingerprint: str
    response: StoredResponse

    @property
    def size(self) -> int:
        return self.response.size + len(self.fingerprint)
