"""ASGI middleware: refuse request bodies over EDGE_MAX_BODY_BYTES with a 413 before reading them.

Django would read the whole body first and then answer with an HTML 400. A declared
Content-Length is judged before a byte is read; a chunked body is counted as it arrives and
the request is cut off as soon as it passes the limit.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings

from apps.billing.ledger import new_request_id
from apps.proxy.errors import PayloadTooLarge

Scope = dict[str, Any]
Message = dict[str, Any]


class BodySizeLimit:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit: int = settings.EDGE_MAX_BODY_BYTES
        declared = _content_length(scope)
        if declared is not None:
            # The server holds the client to its Content-Length, so nothing needs counting.
            if declared > limit:
                await _refuse(send, limit)
            else:
                await self.app(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}  # Django stops reading and sends nothing
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, tracking_send)
        if exceeded and not started:
            await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _refuse(send: Any, limit: int) -> None:
    error = PayloadTooLarge(f"The request body is larger than the gateway accepts ({limit} bytes).")
    body = orjson.dumps(error.body())
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", new_request_id().encode()), (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
