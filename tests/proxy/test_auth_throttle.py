"""Failed authentications throttled per client address: a stream of random keys costs the database at most
the limit's worth of lookups, then 429s; the address that counts is the socket peer's, or what a trusted
proxy says; counts are shared by the gateway's processes through Redis."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio
from django.test import RequestFactory

from apps.billing import keys
from apps.billing.keys import KEY_PREFIX, KeyInfo
from apps.providers.errors import OpenAIError
from apps.proxy.auth import authenticate
from apps.proxy.errors import InvalidApiKey
from edge_project.background import finish_background_work
from tests.conftest import wait_until_served
from tests.harness.gateway import GatewayProcess
from tests.harness.served import CHAT_PATH, Served, serve
from tests.harness.waiting import wait_until

LIMIT = 5  # EDGE_AUTH_FAILURES_MAX of this module's gateways
PROXY = "127.0.0.2"  # the trusted proxy: the gateway listens on 127.0.0.1, reached from any 127.x source
THROTTLED_ENV = {"EDGE_AUTH_FAILURES_MAX": str(LIMIT), "EDGE_AUTH_FAILURES_WINDOW_S": "60",
                 "EDGE_TRUSTED_PROXIES": PROXY}


def random_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def fresh_address() -> str:
    """An address no other test (nor an earlier run, in Redis) has failed from."""
    return str(ipaddress.IPv4Address("100.64.0.0") + secrets.randbelow(2**22))


# --- In process: what a burst of random keys costs the database ------------------------------------------


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Key lookups that reached the database, by key hash."""
    asked: Counter[str] = Counter()
    load = keys.load_key_info

    def counted(key_hash: str) -> KeyInfo | None:
        asked[key_hash] += 1
        return load(key_hash)

    monkeypatch.setattr(keys, "load_key_info", counted)
    return asked


async def statuses_of(attempts: list[tuple[str, str]]) -> Counter[int]:
    """(address, key) pairs authenticated at once: 200 for a key accepted, else the error's status."""

    async def one(address: str, raw_key: str) -> int:
        request = RequestFactory().post(CHAT_PATH, REMOTE_ADDR=address, HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            await authenticate(request)
        except OpenAIError as error:
            return error.status
        return 200

    statuses = Counter(await asyncio.gather(*(one(address, raw_key) for address, raw_key in attempts)))
    await finish_background_work(5)  # failures shared through Redis, off the requests' path
    return statuses


def test_a_thousand_random_keys_from_one_address_cost_at_most_the_limit_in_lookups(
    transactional_db: None, settings: Any, lookups: Counter[str], make_valid_key: Callable[[], str]
):
    settings.EDGE_AUTH_FAILURES_MAX, settings.EDGE_AUTH_FAILURES_WINDOW_S = 20, 60
    attacker, bystander = fresh_address(), fresh_address()
    valid_key = make_valid_key()

    burst = asyncio.run(statuses_of([(attacker, random_key()) for _ in range(1000)]))
    asked_during_burst = sum(lookups.values())
    after = asyncio.run(statuses_of([(attacker, valid_key)]))
    elsewhere = asyncio.run(statuses_of([(bystander, random_key()), (bystander, valid_key)]))

    assert asked_during_burst <= 20
    assert burst == {401: asked_during_burst, 429: 1000 - asked_during_burst}
    assert after == {429: 1}  # refused before the lookup, like fail2ban: whatever key it sends now
    assert elsewhere == {401: 1, 200: 1}


def test_a_valid_key_costs_no_redis_command_even_from_an_address_with_failures(
    transactional_db: None, settings: Any, make_valid_key: Callable[[], str], monkeypatch: pytest.MonkeyPatch
):
    settings.EDGE_AUTH_FAILURES_MAX = 20
    valid_key, address = make_valid_key(), fresh_address()
    asyncio.run(statuses_of([(address, valid_key), (address, random_key())]))  # cached key; one failure
    commands: list[tuple[Any, ...]] = []
    send = redis.asyncio.Redis.execute_command

    async def spy(self: redis.asyncio.Redis, *args: Any, **options: Any) -> Any:
        commands.append(args)
        return await send(self, *args, **options)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated

    monkeypatch.setattr(redis.asyncio.Redis, "execute_command", spy)

    assert asyncio.run(statuses_of([(address, valid_key)] * 50)) == {200: 50}
    assert commands == []
    assert asyncio.run(statuses_of([(address, random_key())])) == {401: 1}
    assert len(commands) == 1  # a failure: one round trip (the spy sees it, so its silence above means something)


def test_an_ipv6_client_is_counted_by_its_slash_64(transactional_db: None, settings: Any):
    settings.EDGE_AUTH_FAILURES_MAX = 3
    network = ipaddress.IPv6Network((int(ipaddress.IPv6Address("2001:db8::")) + (secrets.randbits(32) << 64), 64))

    statuses = asyncio.run(statuses_of([(str(network[index + 1]), random_key()) for index in range(10)]))

    assert statuses == {401: 3, 429: 7}


@pytest.fixture
def make_valid_key() -> Callable[[], str]:
    from tests.factories import make_key, make_tenant

    def make() -> str:
        return make_key(make_tenant())[1]

    return make


def test_an_invalid_key_is_still_a_401_in_openais_shape(transactional_db: None):
    request = RequestFactory().post(CHAT_PATH, REMOTE_ADDR=fresh_address(), HTTP_AUTHORIZATION=f"Bearer {random_key()}")

    with pytest.raises(InvalidApiKey):
        asyncio.run(authenticate(request))


# --- End to end: whose address counts, and across processes --------------------------------------------


@pytest.fixture(scope="module")
def throttled_gateways(django_db_setup: None, django_db_blocker: Any,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    processes = []
    for name in ("a", "b"):
        directory = tmp_path_factory.mktemp(f"throttled-gateway-{name}")
        with django_db_blocker.unblock():
            processes.append(GatewayProcess(spool_dir=directory / "spool", log_path=directory / "gateway.log",
                                            env=THROTTLED_ENV))
    with processes[0], processes[1]:
        yield processes[0], processes[1]


@pytest.fixture
def served_on_both(throttled_gateways: tuple[GatewayProcess, GatewayProcess], fake_v1: str,
                   live_db: None) -> tuple[Served, Served]:
    first, second = throttled_gateways
    served = serve(first, fake_v1)
    wait_until_served(second.url, served.raw_key, served.model)
    return served, Served(second, served.route, served.tenant, served.key, served.raw_key)


def chat(served: Served, raw_key: str, *, source: str = "127.0.0.1", forwarded: str | None = None) -> httpx.Response:
    """A chat request with ``raw_key``, from the loopback address ``source``, as a proxy would forward it."""
    headers = {"Authorization": f"Bearer {raw_key}"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10) as client:
        return client.post(f"{served.gateway.url}{CHAT_PATH}", json=served.chat_body(), headers=headers)


def test_the_address_a_trusted_proxy_forwards_is_the_one_throttled(served_on_both: tuple[Served, Served]):
    served, _ = served_on_both
    client, neighbour = fresh_address(), fresh_address()

    failures = [chat(served, random_key(), source=PROXY, forwarded=client).status_code for _ in range(LIMIT)]
    refused = chat(served, random_key(), source=PROXY, forwarded=client)
    with_valid_key = chat(served, served.raw_key, source=PROXY, forwarded=client)

    assert failures == [401] * LIMIT
    assert refused.status_code == 429 and 55 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["code"] == "too_many_failed_authentications"
    assert with_valid_key.status_code == 429
    assert chat(served, served.raw_key, source=PROXY, forwarded=neighbour).status_code == 200
    assert chat(served, served.raw_key, source=PROXY).status_code == 200  # the proxy itself is not throttled


def test_an_untrusted_peers_forwarded_header_is_ignored(served_on_both: tuple[Served, Served]):
    served, _ = served_on_both
    throttled = fresh_address()
    for _ in range(LIMIT):
        chat(served, random_key(), source=PROXY, forwarded=throttled)

    # Claiming to be the throttled address does not make a peer that address...
    claims_throttled = chat(served, served.raw_key, source="127.0.0.3", forwarded=throttled)
    # ...nor does claiming a new address each time spread a peer's failures.
    forged = [chat(served, random_key(), source="127.0.0.4", forwarded=fresh_address()).status_code
              for _ in range(LIMIT + 1)]

    assert claims_throttled.status_code == 200
    assert forged == [401] * LIMIT + [429]
    assert chat(served, served.raw_key, source="127.0.0.4", forwarded=fresh_address()).status_code == 429


def test_failures_in_one_process_count_in_the_others(served_on_both: tuple[Served, Served]):
    here, there = served_on_both
    client = fresh_address()
    assert [chat(here, random_key(), source=PROXY, forwarded=client).status_code for _ in range(3)] == [401] * 3

    assert [chat(there, random_key(), source=PROXY, forwarded=client).status_code for _ in range(2)] == [401] * 2

    # The second process reached the limit with two failures of its own: it learned of the other three.
    wait_until(lambda: chat(there, there.raw_key, source=PROXY, forwarded=client).status_code == 429,
               timeout_s=5, what="the second process refusing the address")
    # The first learns of the second's with its next failure (one round trip, the only one it makes).
    assert chat(here, random_key(), source=PROXY, forwarded=client).status_code == 401
    wait_until(lambda: chat(here, here.raw_key, source=PROXY, forwarded=client).status_code == 429,
               timeout_s=5, what="the first process refusing the address")
