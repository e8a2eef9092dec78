"""Redis refusing connections, hanging (SIGSTOP: accepts, never answers), flapping and restarting under
load: clients see no errors, no request waits on Redis for more than a small bound, and L2 comes back
by itself. The Redis here is the tests' own redis-server, never the machine's."""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_project import redis_clients
from edge_project.redis_clients import bounded
from tests.conftest import wait_until_served
from tests.harness.gateway import GatewayProcess
from tests.harness.redis_server import RedisServer
from tests.harness.served import CHAT_PATH, Served, serve
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.usefixtures("live_db")

REDIS_TIMEOUT_S = 0.2
REDIS_COOLDOWN_S = 1.0
# A request makes one Redis round trip on its way (the lookup and the flight lock together), bounded
# as a whole by the timeout, and the cool-down spares the requests after a failure; the rest is the
# gateway's own work on a shared 2-core machine.
LATENCY_BOUND_S = REDIS_TIMEOUT_S + 0.6
CLIENTS = 6
PROMPTS = 12  # half the clients cycle through these (hits), half ask something new each time (misses)


@dataclass(frozen=True)
class Outcome:
    started: float
    seconds: float
    status: int | None
    cache: str


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def redis_gateways(own_redis: RedisServer, django_db_setup: None, django_db_blocker: Any,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    env = {"REDIS_URL": own_redis.url, "REDIS_TIMEOUT_S": str(REDIS_TIMEOUT_S),
           "REDIS_COOLDOWN_S": str(REDIS_COOLDOWN_S)}
    processes = []
    for name in ("a", "b"):
        directory = tmp_path_factory.mktemp(f"redis-gateway-{name}")
        with django_db_blocker.unblock():
            processes.append(GatewayProcess(spool_dir=directory / "spool", log_path=directory / "gateway.log", env=env))
    with processes[0], processes[1]:
        yield processes[0], processes[1]


@pytest.fixture
def on_both(redis_gateways: tuple[GatewayProcess, GatewayProcess], fake_v1: str, own_redis: RedisServer,
            tmp_path: Path) -> tuple[Served, Served]:
    if own_redis.process is None:  # a failed test may have left it down
        own_redis.start()
    own_redis.resume()
    first, second = redis_gateways
    served = serve(first, fake_v1, cache_ttl_s=300)
    wait_until_served(second.url, served.raw_key, served.model)
    return served, Served(second, served.route, served.tenant, served.key, served.raw_key)


async def load_while(served: Served, duration_s: float, trouble: Callable[[], Awaitable[None]]) -> list[Outcome]:
    """CLIENTS clients cycling through PROMPTS prompts for ``duration_s``, while ``trouble()`` runs."""
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + duration_s

    async def client_loop(client: httpx.AsyncClient, offset: int) -> None:
        number = offset
        while time.monotonic() < deadline:
            prompt = f"prompt number {number % PROMPTS}" if offset % 2 else f"new prompt {offset} {number}"
            body = served.chat_body(prompt)
            started = time.monotonic()
            try:
                response = await client.post(f"{served.gateway.url}{CHAT_PATH}", json=body)
                status, cache = response.status_code, response.headers.get("x-edge-cache", "")
            except httpx.HTTPError:
                status, cache = None, ""
            outcomes.append(Outcome(started, time.monotonic() - started, status, cache))
            number += 1

    async with httpx.AsyncClient(headers=served.headers(), timeout=10) as client:
        await asyncio.gather(trouble(), *(client_loop(client, offset) for offset in range(CLIENTS)))
    return outcomes


def assert_served_throughout(outcomes: list[Outcome]) -> None:
    failures = [outcome for outcome in outcomes if outcome.status != 200]
    slowest = max(outcome.seconds for outcome in outcomes)
    assert len(outcomes) > 100
    assert not failures, f"{len(failures)} of {len(outcomes)} requests failed, e.g. {failures[:3]}"
    assert slowest < LATENCY_BOUND_S, f"the slowest request took {slowest:.3f} s"


def assert_l2_works(here: Served, there: Served, text: str) -> None:
    """A fresh answer made on one process is found in Redis by the other (once its cool-down ends)."""

    attempts = itertools.count()

    def found_in_redis() -> bool:
        # A new question each time: one answered while Redis was still cooling down stays in L1 only.
        # The other side's miss stores nothing (no-store), so only Redis can turn it into a hit.
        question = f"{text} ({next(attempts)})"
        here.post(here.chat_body(question))
        answer = there.post(there.chat_body(question), headers=there.headers(**{"Cache-Control": "no-store"}))
        return bool(answer.headers["x-edge-cache"] == "hit-l2")

    wait_until(found_in_redis, timeout_s=5 * REDIS_COOLDOWN_S, what="an L2 hit after Redis came back")


def test_redis_stopped_and_restarted_under_load_costs_clients_nothing(on_both: tuple[Served, Served],
                                                                    own_redis: RedisServer):
    here, there = on_both

    async def trouble() -> None:
        await asyncio.sleep(0.5)
        own_redis.stop()
        await asyncio.sleep(1.5)
        own_redis.start()

    outcomes = asyncio.run(load_while(here, 3.5, trouble))

    assert_served_throughout(outcomes)
    assert {"hit-l1", "miss"} <= {outcome.cache for outcome in outcomes}
    assert_l2_works(here, there, "asked after the restart")


def test_a_hung_redis_under_load_costs_clients_at_most_a_bounded_wait(on_both: tuple[Served, Served],
                                                                    own_redis: RedisServer):
    here, there = on_both

    async def trouble() -> None:
        await asyncio.sleep(0.5)
        own_redis.pause()
        await asyncio.sleep(2.0)
        own_redis.resume()

    outcomes = asyncio.run(load_while(here, 4.0, trouble))

    assert_served_throughout(outcomes)
    during = [outcome for outcome in outcomes if 0.6 < outcome.started - outcomes[0].started < 2.4]
    assert len(during) > 20  # the gateway kept answering while Redis said nothing
    assert_l2_works(here, there, "asked after the hang")


def test_a_flapping_redis_under_load_costs_clients_nothing(on_both: tuple[Served, Served], own_redis: RedisServer):
    here, there = on_both

    async def trouble() -> None:
        for _ in range(4):
            await asyncio.sleep(0.3)
            own_redis.pause()
            await asyncio.sleep(0.3)
            own_redis.resume()
        own_redis.stop()
        await asyncio.sleep(0.3)
        own_redis.start()

    outcomes = asyncio.run(load_while(here, 3.5, trouble))

    assert_served_throughout(outcomes)
    assert_l2_works(here, there, "asked after the flapping")


async def answer_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delay_s: float) -> None:
    """A Redis that answers each command (a RESP array) with +OK, ``delay_s`` after reading it."""
    try:
        while header := await reader.readline():
            for _ in range(int(header[1:])):
                size = await reader.readline()
                await reader.readexactly(int(size[1:]) + 2)
            await asyncio.sleep(delay_s)
            writer.write(b"+OK\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def test_a_slow_redis_costs_a_command_at_most_one_timeout(settings: Any, monkeypatch: pytest.MonkeyPatch):
    settings.REDIS_TIMEOUT_S = 0.3
    monkeypatch.setattr(redis_clients, "_unusable_until", 0.0)  # put back afterwards: the cool-down is not ours to keep

    async def ask_slow_redis() -> tuple[object, float]:
        server = await asyncio.start_server(functools.partial(answer_slowly, delay_s=0.2), "127.0.0.1", 0)
        settings.REDIS_URL = f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/1"
        async with server:
            started = time.monotonic()
            reply = await bounded(lambda client: client.get("key"))
            return reply, time.monotonic() - started

    reply, seconds = asyncio.run(ask_slow_redis())

    # Every reply comes within the socket timeout, but a new connection's setup (CLIENT SETINFO twice,
    # SELECT) and the command make four of them: 0.8 s, unless the whole exchange is bounded.
    assert reply is None
    assert seconds < 0.3 * 1.5, f"the command took {seconds:.3f} s"
