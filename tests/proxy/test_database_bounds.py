"""The request path's database work, in process: bounded in time, statements included, kept off a failing
database, and answered from stale key lookups meanwhile (the end-to-end view: test_database_outage.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from django.db import connection

from apps.billing import keys
from apps.billing.keys import KeyCache
from apps.billing.services import revoke_api_key
from apps.routing import table
from apps.routing.table import TableHolder
from edge_project import db
from edge_project.background import finish_background_work
from edge_project.db import DatabaseUnavailable, database_failing, run_bounded
from tests.factories import make_key, make_tenant

T = TypeVar("T")
MARGIN_S = 0.5  # the event loop and a thread's start on a loaded 2-core machine

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture(autouse=True)
def healthy_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with a database the request path believes in, and leaves the process's belief alone."""
    monkeypatch.setattr(db, "_availability", db._Availability())
    yield


class Stuck:
    """Work that blocks, as on a hung database, until ``finish()``; and the log of its calls."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[str] = []
        self.finished = 0

    def __call__(self) -> str:
        self.calls.append("stuck")
        self.release.wait(10)
        self.finished += 1
        return "late"

    async def finish(self) -> None:
        """Let the abandoned threads end while the loop still runs (their outcome is delivered to it)."""
        self.release.set()
        await until(lambda: self.finished == self.calls.count("stuck"))


@pytest.fixture
def stuck() -> Iterator[Stuck]:
    work = Stuck()
    yield work
    work.release.set()


def show_statement_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return str(cursor.fetchone()[0])


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)


async def timed(work: Callable[[], Any]) -> float:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        await run_bounded(work)
    return time.monotonic() - started


def test_request_path_statements_get_the_short_timeout_and_other_connections_keep_theirs(settings: Any):
    settings.EDGE_DB_TIMEOUT_S = 1.5

    assert asyncio.run(run_bounded(show_statement_timeout)) == "1500ms"
    assert show_statement_timeout() == "0"  # this thread's connection: what the ledger's flush thread gets


def test_work_that_outlasts_the_bound_is_abandoned_and_its_caller_answered(settings: Any, stuck: Stuck):
    settings.EDGE_DB_TIMEOUT_S = 0.2

    async def scenario() -> tuple[float, bool]:
        seconds = await timed(stuck)
        failing = database_failing()
        await stuck.finish()
        return seconds, failing

    seconds, failing = asyncio.run(scenario())

    assert seconds < 0.2 + MARGIN_S
    assert failing


def test_while_the_database_is_failing_one_call_at_a_time_asks_it(settings: Any, stuck: Stuck):
    settings.EDGE_DB_TIMEOUT_S = 0.2

    def quick() -> str:
        stuck.calls.append("quick")
        return "ok"

    async def scenario() -> tuple[list[float], str]:
        await timed(stuck)  # the database stops answering: failing from here on
        await timed(stuck)  # the probe: it asks, times out, and its thread stays on the database
        refused = [await timed(quick), await timed(quick)]  # at once, without asking: the probe is still out
        await stuck.finish()  # the database answers again: the probe's late success ends the failure
        return refused, await run_bounded(quick)

    refused, answer = asyncio.run(scenario())

    assert stuck.calls == ["stuck", "stuck", "quick"]
    assert max(refused) < 0.05
    assert answer == "ok"


def test_a_processes_first_routing_table_waits_at_most_the_bound(
    settings: Any, monkeypatch: pytest.MonkeyPatch, stuck: Stuck
):
    settings.EDGE_DB_TIMEOUT_S = 0.3
    monkeypatch.setattr(table, "query_routing_table", stuck)

    async def first_table() -> float:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            await TableHolder().current()
        seconds = time.monotonic() - started
        await stuck.finish()
        return seconds

    assert asyncio.run(first_table()) < 0.3 + MARGIN_S


def test_a_known_key_is_served_stale_while_the_database_cannot_answer_but_no_longer_than_allowed(
    settings: Any, monkeypatch: pytest.MonkeyPatch
):
    settings.EDGE_KEY_CACHE_TTL_S, settings.EDGE_KEY_STALE_S = 0, 1.0
    _, raw_key = make_key(make_tenant())
    cache = KeyCache()

    async def scenario() -> tuple[int, float]:
        await cache.lookup(raw_key)  # confirmed by the database
        confirmed = time.monotonic()
        monkeypatch.setattr(keys, "run_bounded", unavailable)
        served = 0
        while True:
            try:
                assert (await cache.lookup(raw_key)) is not None
            except DatabaseUnavailable:
                return served, time.monotonic() - confirmed
            served += 1
            await asyncio.sleep(0.05)

    served, refused_after_s = asyncio.run(scenario())

    assert served >= 5
    assert 1.0 <= refused_after_s < 1.0 + MARGIN_S


def test_a_key_refused_before_the_outage_stays_refused_and_one_never_seen_is_unavailable(
    settings: Any, monkeypatch: pytest.MonkeyPatch
):
    settings.EDGE_KEY_CACHE_TTL_S = 0
    cache = KeyCache()

    async def scenario() -> object:
        await cache.lookup("sk-edge-never-issued")
        monkeypatch.setattr(keys, "run_bounded", unavailable)
        refused = await cache.lookup("sk-edge-never-issued")
        with pytest.raises(DatabaseUnavailable):
            await cache.lookup("sk-edge-never-seen-either")
        return refused

    assert asyncio.run(scenario()) is None


def test_a_failing_database_is_not_asked_for_a_key_a_stale_answer_covers(
    settings: Any, monkeypatch: pytest.MonkeyPatch
):
    settings.EDGE_KEY_CACHE_TTL_S = 0
    _, raw_key = make_key(make_tenant())
    cache = KeyCache()
    asked: list[object] = []

    async def scenario() -> object:
        info = await cache.lookup(raw_key)
        monkeypatch.setattr(keys, "database_failing", lambda: True)
        monkeypatch.setattr(keys, "run_bounded", lambda work: asked.append(work))
        return info == await cache.lookup(raw_key)

    assert asyncio.run(scenario()) is True
    assert asked == []


def test_a_stale_answer_sends_the_probe_that_finds_the_database_back(settings: Any):
    settings.EDGE_KEY_CACHE_TTL_S = 0
    _, raw_key = make_key(make_tenant())
    cache = KeyCache()

    async def scenario() -> tuple[bool, bool]:
        await cache.lookup(raw_key)
        db._availability.failing = True  # as after a failed query; the database has in fact come back
        stale = await cache.lookup(raw_key)  # answered at once; the probe goes from the background
        await finish_background_work(5)
        return stale is not None, database_failing()

    assert asyncio.run(scenario()) == (True, False)


def test_entries_refresh_as_usual_once_the_database_answers_again(settings: Any, monkeypatch: pytest.MonkeyPatch):
    settings.EDGE_KEY_CACHE_TTL_S = 0
    api_key, raw_key = make_key(make_tenant())
    cache = KeyCache()

    seen = [asyncio.run(cache.lookup(raw_key)) is not None]
    with monkeypatch.context() as outage:
        outage.setattr(keys, "run_bounded", unavailable)
        revoke_api_key(key=api_key)  # during the outage: not seen
        seen.append(asyncio.run(cache.lookup(raw_key)) is not None)
    seen.append(asyncio.run(cache.lookup(raw_key)) is not None)  # the database answers: the revocation holds

    assert seen == [True, True, False]


async def unavailable(work: Callable[[], T]) -> T:
    raise DatabaseUnavailable("the test's outage")
