"""The client's address, for the request path: the socket peer, unless a proxy the operator trusts says otherwise.

``X-Forwarded-For`` is believed only from the proxies in EDGE_TRUSTED_PROXIES (addresses or CIDRs):
anyone else can write any address in it. Behind trusted proxies the header is read from the right
(each proxy appends the peer it saw), skipping the trusted hops; the first address that is not a
trusted proxy is the client. A header that is malformed where trusted proxies wrote it is ignored.
``Forwarded`` and ``X-Real-IP`` are not read. The peer comes from the ASGI server, so it must not
rewrite it from headers itself (uvicorn: ``--no-proxy-headers``; see README.md).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest

logger = logging.getLogger(__name__)
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: HttpRequest) -> str:
    """The client's IP address as text (IPv4-mapped IPv6 as IPv4), or the peer as the server gave it
    when it is no IP address (a Unix socket: empty)."""
    peer_text: str = request.META.get("REMOTE_ADDR", "")
    proxies = trusted_proxies()
    if not proxies:
        return peer_text
    peer = parse_address(peer_text)
    if peer is None or not _within(peer, proxies):
        return peer_text
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")  # repeated headers arrive joined by ","
    client = peer
    for hop in reversed(forwarded.split(",") if forwarded else []):
        address = parse_address(hop.strip())
        if address is None:
            return str(peer)  # a trusted proxy wrote no address here: take no one's word for the rest
        client = address
        if not _within(address, proxies):
            break
    return str(client)


def parse_address(text: str) -> Address | None:
    """An IP address, with or without a port (``1.2.3.4:5``, ``[::1]:5``); None if there is none."""
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.cache  # read once: every request asks, and a Django setting costs ~0.6 µs to read
def trusted_proxies() -> tuple[Network, ...]:
    """EDGE_TRUSTED_PROXIES parsed; an entry that is no address or network is left out (check edge.E072)."""
    networks = []
    for entry in settings.EDGE_TRUSTED_PROXIES:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            logger.error("EDGE_TRUSTED_PROXIES: %r is not an IP address or network; ignored", entry)
    return tuple(networks)


@receiver(setting_changed)
def _reread_trusted_proxies(*, setting: str, **kwargs: Any) -> None:
    if setting == "EDGE_TRUSTED_PROXIES":  # tests (override_settings) change it
        trusted_proxies.cache_clear()


def _within(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)
