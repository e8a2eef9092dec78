"""The project's one HTTP client seam: a pooled ``httpx.AsyncClient`` per provider, per event loop.

Clients are created lazily inside the running loop (a client is bound to the loop that opened its
connections) and reused for every call, so keep-alive connections to each provider are shared by
all requests of a process. Tests that run several loops get one set of clients per loop.

``use_transport()`` is the one test hook: tests replay recorded provider transcripts through an
``httpx.MockTransport`` installed here, so every adapter is exercised down to its HTTP requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterator

import httpx
from django.conf import settings

from apps.providers.contracts import Upstream

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[int, str, float], httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


_transport: httpx.AsyncBaseTransport | None = None


@contextlib.contextmanager
def use_transport(transport: httpx.AsyncBaseTransport) -> Iterator[None]:
    """Tests only: clients made inside this block send through ``transport`` instead of the network."""
    global _transport
    _clients.clear()
    _transport = transport
    try:
        yield
    finally:
        _transport = None
        _clients.clear()


def client_for(upstream: Upstream) -> httpx.AsyncClient:
    """The shared client for this provider's base URL in the current loop."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (upstream.provider_id, upstream.base_url, upstream.timeout_s)
    client = per_loop.get(key)
    if client is None:
        client = per_loop[key] = _new_client(upstream)
    return client


def _new_client(upstream: Upstream) -> httpx.AsyncClient:
    size = settings.EDGE_UPSTREAM_MAX_CONNECTIONS
    return httpx.AsyncClient(
        base_url=upstream.base_url.rstrip("/"),
        # Per-read timeouts only; each attempt's total time is bounded by asyncio.timeout in the
        # adapter, because a dribbling upstream outlives any per-read timeout.
        timeout=httpx.Timeout(upstream.timeout_s, connect=min(upstream.timeout_s, 10.0)),
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        follow_redirects=False,
        transport=_transport,
    )


async def close_clients() -> None:
    """Close this loop's clients (at shutdown, so sockets are not left half-open)."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    await asyncio.gather(*(client.aclose() for client in per_loop.values()), return_exceptions=True)
