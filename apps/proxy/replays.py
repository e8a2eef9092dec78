"""Idempotency keys in the pipeline: a repeat gets the first response again, and is charged nothing.

Before admission, a request that carries ``Idempotency-Key`` claims it for its tenant
(``apps.proxy.idempotency``): the first one runs; a repeat with the same body gets the stored
response (status, body, ``x-request-id`` and the other headers of the first) plus
``Idempotent-Replayed: true``, with no provider call and no charge; a repeat arriving while the
first runs waits for it. After the response, ``keep()`` stores what may be replayed: successes and
the client's own 4xx. Refusals (429), conflicts (409), timeouts (408) and the gateway's or a
provider's failures (5xx) are not kept: the claim is released and a retry runs afresh. A stream is
kept as the bytes the client received, once it completed.

A replay is a request too: it has its own ledger row (cost 0, its note naming the request it
replayed).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from apps.billing.models import LedgerEntry
from apps.proxy.exchange import Exchange
from apps.proxy.idempotency import Claim, StoredResponse, claim, finish, release
from apps.routing.table import ModelRoute

HEADER = "Idempotency-Key"
NOT_KEPT = {408, 409, 429}
KEPT_HEADERS = ("content-type", "x-request-id", "x-edge-", "x-ratelimit-")


async def replay_if_repeated(request: HttpRequest, exchange: Exchange, route: ModelRoute) -> HttpResponseBase | None:
    """Claim the request's idempotency key, or answer with the response of the request that claimed it."""
    key = request.headers.get(HEADER)
    if key is None or exchange.key is None:
        return None
    fingerprint = hashlib.sha256(exchange.endpoint.encode() + b"\n" + request.body).hexdigest()
    claimed = await claim(tenant_id=exchange.key.tenant_id, key=key, fingerprint=fingerprint,
                          wait_s=route.policy.request_deadline_s)
    if isinstance(claimed, Claim):
        exchange.idempotency = claimed
        return None
    first = claimed.header("x-request-id")
    exchange.note = f"replay of {first} (Idempotency-Key)"
    exchange.replayed = True
    ok = claimed.status < 400
    exchange.finish(status=LedgerEntry.Status.OK if ok else LedgerEntry.Status.ERROR, http_status=claimed.status)
    return _replayed(claimed)


def _replayed(stored: StoredResponse) -> HttpResponse:
    response = HttpResponse(stored.body, status=stored.status)
    for name, value in stored.headers:
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


async def keep(exchange: Exchange, response: HttpResponseBase) -> HttpResponseBase:
    """After the response is stamped: store it for repeats, or free the key for a retry."""
    claimed = exchange.idempotency
    if claimed is None:
        return response
    if response.status_code >= 500 or response.status_code in NOT_KEPT:
        release(claimed)
        return response
    if isinstance(response, StreamingHttpResponse):
        relayed = response.streaming_content  # taken before it is replaced by what keeps it
        response.streaming_content = _kept_stream(exchange, claimed, response, relayed)
        return response
    assert isinstance(response, HttpResponse)
    await finish(claimed, StoredResponse(status=response.status_code, headers=_kept_headers(response),
                                         body=response.content, stream=False))
    return response


def let_go(exchange: Exchange) -> None:
    """The request ended with nothing to keep (the client left): its key is free again."""
    if exchange.idempotency is not None:
        release(exchange.idempotency)


async def _kept_stream(
    exchange: Exchange, claimed: Claim, response: StreamingHttpResponse, relayed: Any
) -> AsyncIterator[bytes]:
    """The stream as the client gets it, kept as it goes (up to EDGE_IDEMPOTENCY_MAX_BYTES: past that a
    repeat is told the first response was too large to replay, never run again)."""
    headers = _kept_headers(response)
    limit: int = settings.EDGE_IDEMPOTENCY_MAX_BYTES
    sent, size = [], 0
    try:
        async for chunk in relayed:  # our relay: an async iterator
            size += len(chunk)
            if size <= limit:
                sent.append(bytes(chunk))
            yield chunk
    except BaseException:  # the client left (the generator closed) or the relay broke
        release(claimed)
        raise
    if exchange.status != LedgerEntry.Status.OK:  # ended with an error event: a retry should run
        release(claimed)
        return
    await finish(claimed, StoredResponse(status=response.status_code, headers=headers, body=b"".join(sent),
                                         stream=True, truncated=size > limit))


def _kept_headers(response: HttpResponseBase) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in response.items() if name.lower().startswith(KEPT_HEADERS))
