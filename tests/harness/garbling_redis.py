"""A "Redis" on loopback that answers every command with a reply redis-py cannot parse.

``:x`` is an integer reply whose digits are not digits: redis-py's parser raises ``ValueError``, not
one of its own errors: the kind of failure a gateway must survive without a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from tests.harness.background_loop import BackgroundLoop

GARBLED_REPLY = b":x\r\n"


class GarblingRedis:
    def __init__(self) -> None:
        self._loop: BackgroundLoop | None = None
        self._server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0  # how many times a client connected (it tried Redis)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> GarblingRedis:
        self._loop = BackgroundLoop("garbling-redis")
        self._server = self._loop.run(asyncio.start_server(self._answer, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.run(self._close())
            self._loop.stop()
            self._loop = None

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(OSError):
            while await reader.read(65536):
                writer.write(GARBLED_REPLY)
                await writer.drain()
        writer.transport.abort()

    def __enter__(self) -> GarblingRedis:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
