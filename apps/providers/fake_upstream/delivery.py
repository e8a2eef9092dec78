"""Putting replies on the socket, broken in the ways the fault knobs ask for.

Body faults (`malformed`, `missing_fields`) touch successful replies only, so an
error reply chosen by `fail_status` or `require_key` always arrives intact.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import orjson

from .http11 import LAST_CHUNK, encode_chunk, encode_head
from .replies import JsonReply, Reply, SseEvent, SseReply, TextReply
from .rules import Knobs

# A `data:` line that starts like a real chunk but is not JSON.
BROKEN_EVENT = b'data: {"id": "broken", "choices": [{"delta": {"content": "\n\n'
STREAM_HEADERS = (
    ("content-type", "text/event-stream; charset=utf-8"),
    ("transfer-encoding", "chunked"),
    ("cache-control", "no-cache"),
)


async def send_reply(writer: asyncio.StreamWriter, reply: Reply, knobs: Knobs, *,
                     keep_alive: bool) -> bool:
    """Write a reply; True if the connection may serve another request."""
    if isinstance(reply, SseReply):
        return await _send_stream(writer, reply, knobs, keep_alive=keep_alive)
    status, content_type, body = _encode_whole(reply, knobs)
    extra_headers = reply.headers if isinstance(reply, JsonReply) else ()
    headers = (("content-type", content_type), ("content-length", str(len(body))),
               *extra_headers)
    head = encode_head(status, headers, keep_alive=keep_alive)
    if knobs.dribble_ms:
        writer.write(head)
        await _dribble(writer, body, knobs.dribble_ms)
    else:
        writer.write(head + body)
        await writer.drain()
    return keep_alive


def _encode_whole(reply: JsonReply | TextReply, knobs: Knobs) -> tuple[int, str, bytes]:
    if isinstance(reply, TextReply):
        return reply.status, "text/plain; charset=utf-8", reply.text.encode()
    payload = reply.payload
    if reply.status != 200:
        return reply.status, "application/json", orjson.dumps(payload)
    if knobs.missing_fields and isinstance(payload, dict):
        payload = {k: v for k, v in payload.items() if k != reply.essential_field}
    body = orjson.dumps(payload)
    if knobs.malformed:
        # Any proper prefix of a JSON document leaves a bracket open, so this never parses.
        body = body[: len(body) // 2]
    return 200, "application/json", body


async def _send_stream(writer: asyncio.StreamWriter, reply: SseReply, knobs: Knobs, *,
                       keep_alive: bool) -> bool:
    cut = knobs.cut_stream_after is not None
    frames = [encode_chunk(event) for event in _stream_events(reply, knobs)]
    if not cut:
        frames.append(LAST_CHUNK)
    head = encode_head(200, STREAM_HEADERS, keep_alive=keep_alive)
    if not knobs.chunk_delay_ms and not knobs.dribble_ms:
        writer.write(head + b"".join(frames))
        await writer.drain()
        return keep_alive and not cut
    writer.write(head)
    for index, frame in enumerate(frames):
        if index and knobs.chunk_delay_ms and frame is not LAST_CHUNK:
            await asyncio.sleep(knobs.chunk_delay_ms / 1000)
        if knobs.dribble_ms:
            await _dribble(writer, frame, knobs.dribble_ms)
        else:
            writer.write(frame)
            await writer.drain()
    return keep_alive and not cut


def _stream_events(reply: SseReply, knobs: Knobs) -> list[bytes]:
    content = reply.content
    if knobs.missing_fields and reply.essential_field:
        content = [_without_field(event, reply.essential_field) for event in content]
    if knobs.cut_stream_after is not None:
        return [e.encode() for e in (*reply.head, *content[: knobs.cut_stream_after])]
    events = [e.encode() for e in (*reply.head, *content, *reply.tail)]
    if knobs.malformed:
        events.insert(len(reply.head), BROKEN_EVENT)
    return events


def _without_field(event: SseEvent, field: str) -> SseEvent:
    if isinstance(event.data, str):
        return event
    return SseEvent({k: v for k, v in event.data.items() if k != field}, event.name)


async def _dribble(writer: asyncio.StreamWriter, data: bytes, interval_ms: float) -> None:
    for index in range(len(data)):
        if index:
            await asyncio.sleep(interval_ms / 1000)
        writer.write(data[index : index + 1])
        await writer.drain()


def reset_connection(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP RST rather than a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def wait_for_close(reader: asyncio.StreamReader) -> None:
    """Hold the connection open, answering nothing, until the client gives up."""
    while await reader.read(65536):
        pass
