"""Just enough HTTP/1.1 to be a believable upstream, over asyncio streams.

Hand-rolled rather than built on a framework so that the fault knobs act on the
real socket: a reset is a TCP RST, a dribble is one byte per write, and a cut
stream is a chunked body that never gets its terminator.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import parse_qsl

# Bodies past this are refused, so a runaway client cannot exhaust memory.
MAX_BODY_BYTES = 128 * 1024 * 1024
# The StreamReader buffer limit; it bounds the header block and chunk-size lines.
READ_LIMIT = 1024 * 1024

REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 409: "Conflict", 413: "Content Too Large",
    422: "Unprocessable Content", 431: "Request Header Fields Too Large", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 529: "Overloaded",
}


class BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.1 request we can answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | None:
    """Read one request; None when the client closed the connection between requests."""
    try:
        block = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise BadRequest(400, "connection closed mid-request") from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise BadRequest(431, "request header block too large") from exc
    method, target, version, headers = parse_head(block)
    path, _, query_string = target.partition("?")
    if headers.get("expect", "").lower() == "100-continue":
        # curl asks before sending large bodies; without this it stalls for a second.
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await read_body(reader, headers)
    return Request(
        method=method,
        path=path,
        query=dict(parse_qsl(query_string)),
        headers=headers,
        body=body,
        keep_alive=wants_keep_alive(version, headers),
    )


def parse_head(block: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = block[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, f"malformed request line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, f"malformed header line {line!r}")
        name = name.lower()
        value = value.strip()
        # Repeated headers fold into one comma-separated value (RFC 9110 5.3).
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return parts[0], parts[1], parts[2], headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await read_chunked_body(reader)
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise BadRequest(400, f"bad Content-Length {length_text!r}")
    length = int(length_text)
    if length > MAX_BODY_BYTES:
        raise BadRequest(413, "request body too large")
    try:
        return await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError as exc:
        raise BadRequest(400, "connection closed mid-body") from exc


async def read_chunked_body(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    try:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                break
            if len(body) + size > MAX_BODY_BYTES:
                raise BadRequest(413, "request body too large")
            body += await reader.readexactly(size + 2)
            del body[-2:]
        # Trailer fields are allowed after the last chunk; they end with an empty line.
        while await reader.readuntil(b"\r\n") != b"\r\n":
            pass
    except ValueError as exc:
        raise BadRequest(400, "malformed chunk size") from exc
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise BadRequest(400, "malformed chunked body") from exc
    return bytes(body)


def wants_keep_alive(version: str, headers: dict[str, str]) -> bool:
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


def encode_head(
    status: int,
    headers: tuple[tuple[str, str], ...],
    *,
    keep_alive: bool,
) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
