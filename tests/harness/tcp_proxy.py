"""A TCP forwarder on loopback that a test can hang or cut, in front of a real server (Postgres, say).

The machine's Postgres is shared with other sessions and must never be stopped; a gateway pointed at
this proxy instead sees an outage the test controls, and nobody else does:

- ``pause()``: nothing is forwarded any more, in either direction, and new connections are accepted
  but never reach the server: a hung database (sockets open, no answer).
- ``kill()``: every connection is reset and the port refuses new ones: a database that is down.
- ``resume()``: forwarding goes on (after ``kill()``, on the same port, for new connections).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from tests.harness.background_loop import BackgroundLoop
from tests.harness.gateway import free_port

CHUNK_BYTES = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop: BackgroundLoop | None = None
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> TcpProxy:
        self._loop = BackgroundLoop("tcp-proxy")
        self.resume()
        return self

    def pause(self) -> None:
        self._run(self._pause())

    def kill(self) -> None:
        self._run(self._kill())

    def resume(self) -> None:
        self._run(self._resume())

    def close(self) -> None:
        if self._loop is not None:
            self._run(self._kill())
            self._loop.stop()
            self._loop = None

    def _run(self, work: Any) -> None:
        assert self._loop is not None, "the proxy is not started"
        self._loop.run(work)

    async def _pause(self) -> None:
        self._events().clear()

    async def _resume(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self._events().set()

    async def _kill(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as when the server's host goes away
        self._writers.clear()
        self._events().clear()

    def _events(self) -> asyncio.Event:
        if self._flowing is None:  # made on the proxy's own loop
            self._flowing = asyncio.Event()
        return self._flowing

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        try:
            await self._events().wait()  # paused: accepted, and left hanging
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            self._writers.discard(client_writer)
            return
        self._writers.add(server_writer)
        await asyncio.gather(self._pump(client_reader, server_writer), self._pump(server_reader, client_writer))
        for writer in (client_writer, server_writer):
            self._writers.discard(writer)
            writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK_BYTES):
                await self._events().wait()
                if writer.transport.is_closing():
                    return
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
