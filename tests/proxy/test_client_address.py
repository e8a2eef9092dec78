"""The client's address: the socket peer, unless a proxy the operator trusts says otherwise in X-Forwarded-For."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from apps.proxy.client_address import client_address


def address_of(peer: str, forwarded: str | None = None) -> str:
    request = RequestFactory().get("/v1/models", REMOTE_ADDR=peer)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(request)


def test_it_believes_no_forwarded_header_when_no_proxy_is_trusted(settings):
    settings.EDGE_TRUSTED_PROXIES = []

    assert address_of("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_it_ignores_the_forwarded_header_of_a_peer_it_does_not_trust(settings):
    settings.EDGE_TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert address_of("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_it_takes_the_address_a_trusted_proxy_saw(settings):
    settings.EDGE_TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert address_of("10.1.2.3", "198.51.100.1") == "198.51.100.1"


def test_a_client_cannot_hide_behind_addresses_it_writes_itself(settings):
    settings.EDGE_TRUSTED_PROXIES = ["10.0.0.0/8"]

    # The client sent "X-Forwarded-For: 192.0.2.50, 10.9.9.9"; the trusted proxy appended what it saw.
    assert address_of("10.1.2.3", "192.0.2.50, 10.9.9.9, 198.51.100.1") == "198.51.100.1"


def test_it_walks_back_through_a_chain_of_trusted_proxies(settings):
    settings.EDGE_TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.7"]

    assert address_of("10.1.2.3", "203.0.113.5, 192.0.2.7, 10.4.4.4") == "203.0.113.5"


def test_repeated_headers_count_as_one_list(settings):
    settings.EDGE_TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.2.3")
    request.META["HTTP_X_FORWARDED_FOR"] = "203.0.113.5,10.4.4.4"  # how Django joins two headers

    assert client_address(request) == "203.0.113.5"


def test_the_peer_is_the_client_when_a_trusted_proxy_forwards_nothing(settings):
    settings.EDGE_TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert address_of("10.1.2.3") == "10.1.2.3"


@pytest.mark.parametrize("forwarded", ["unknown", "198.51.100.1, not-an-address", "", " , "])
def test_a_malformed_forwarded_header_leaves_the_peer_as_the_client(settings, forwarded: str):
    settings.EDGE_TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert address_of("10.1.2.3", forwarded) == "10.1.2.3"


@pytest.mark.parametrize(("forwarded", "client"), [
    ("198.51.100.1:4711", "198.51.100.1"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("2001:DB8:0:0::1", "2001:db8::1"),
    ("::ffff:198.51.100.1", "198.51.100.1"),
])
def test_it_reads_addresses_with_ports_and_in_any_notation(settings, forwarded: str, client: str):
    settings.EDGE_TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert address_of("10.1.2.3", forwarded) == client


def test_an_entry_that_is_no_network_trusts_nobody_and_is_reported(settings):
    from django.core.checks import run_checks

    settings.EDGE_TRUSTED_PROXIES = ["proxy.internal"]

    assert address_of("10.1.2.3", "198.51.100.1") == "10.1.2.3"
    assert "edge.E072" in {message.id for message in run_checks()}
