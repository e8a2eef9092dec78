"""The ledger spool on its own: rows reach the database once, and survive whatever stops them getting there."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from apps.billing.spool import LedgerSpool, Row
from tests.harness.waiting import wait_until


class Database:
    """Stands in for the ledger table: keeps rows by request id, or refuses them while down."""

    def __init__(self, *, down: bool = False) -> None:
        self.rows: dict[str, Row] = {}
        self.down = down

    def insert(self, rows: list[Row]) -> None:
        if self.down:
            raise ConnectionError("database is down")
        for row in rows:
            self.rows.setdefault(row["request_id"], row)


@pytest.fixture
def database() -> Database:
    return Database()


@pytest.fixture
def start_spool(tmp_path: Path, database: Database) -> Iterator[Callable[[], LedgerSpool]]:
    spools: list[LedgerSpool] = []

    def start() -> LedgerSpool:
        spool = LedgerSpool(tmp_path, insert=database.insert, flush_interval_s=0.01, fsync=False)
        spool.start()
        spools.append(spool)
        return spool

    yield start
    for spool in spools:
        spool.stop(timeout_s=1)


def rows(*request_ids: str) -> list[Row]:
    return [{"request_id": request_id, "cost_usd": "0.0000010000"} for request_id in request_ids]


def orphan(directory: Path, name: str, lines: list[bytes]) -> Path:
    path = directory / f"ledger-deadhost-1-{name}.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def test_it_commits_appended_rows_and_deletes_their_segment(tmp_path, database, start_spool):
    spool = start_spool()
    for row in rows("req_1", "req_2", "req_3"):
        spool.append(row)

    wait_until(lambda: len(database.rows) == 3)

    assert database.rows["req_2"] == rows("req_2")[0]
    wait_until(lambda: spool.pending() == 0)
    assert all(path.stat().st_size == 0 for path in tmp_path.glob("ledger-*.jsonl"))  # only the empty active one


def test_it_keeps_rows_on_disk_while_the_database_refuses_them(tmp_path, database, start_spool):
    database.down = True
    spool = start_spool()
    spool.append(rows("req_1")[0])

    time.sleep(0.1)

    assert spool.pending() == 1 and not database.rows
    assert b"req_1" in b"".join(path.read_bytes() for path in tmp_path.glob("ledger-*.jsonl"))
    database.down = False
    wait_until(lambda: "req_1" in database.rows, timeout_s=3)  # the retry backoff stays short at first


def append_and_stop_with_the_database_down(directory: Path) -> None:
    """A whole process's life, run in a child process: its locks go when it does."""
    spool = LedgerSpool(directory, insert=Database(down=True).insert, flush_interval_s=0.01, fsync=False)
    spool.start()
    spool.append(rows("req_1")[0])
    spool.stop(timeout_s=1)


def test_it_leaves_rows_it_could_not_commit_to_the_next_process(tmp_path, database, start_spool):
    spawn = multiprocessing.get_context("spawn")
    child = spawn.Process(target=append_and_stop_with_the_database_down, args=(tmp_path,))
    child.start()
    child.join(30)
    assert child.exitcode == 0 and not database.rows

    start_spool()

    wait_until(lambda: "req_1" in database.rows)


def test_it_replays_orphaned_segments_at_start_and_deletes_them(tmp_path, database, start_spool):
    path = orphan(tmp_path, "a", [orjson.dumps(row) for row in rows("req_1", "req_2")])

    start_spool()

    wait_until(lambda: not path.exists())
    assert set(database.rows) == {"req_1", "req_2"}


def test_it_replays_a_segment_already_committed_without_counting_it_twice(tmp_path, database, start_spool):
    lines = [orjson.dumps(row) for row in rows("req_1", "req_2")]
    database.insert(rows("req_1", "req_2"))  # a crash between commit and delete leaves the segment behind
    path = orphan(tmp_path, "a", lines)

    start_spool()

    wait_until(lambda: not path.exists())
    assert len(database.rows) == 2


def test_it_leaves_a_segment_locked_by_a_live_process_alone(tmp_path, database, start_spool):
    path = orphan(tmp_path, "live", [orjson.dumps(rows("req_1")[0])])
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as its owner holds it
    try:
        start_spool()
        time.sleep(0.1)
        assert path.exists() and not database.rows
    finally:
        os.close(fd)


def test_it_sets_a_torn_line_aside_and_replays_the_rest(tmp_path, database, start_spool):
    torn = b'{"request_id": "req_3", "cost'
    path = orphan(tmp_path, "torn", [orjson.dumps(row) for row in rows("req_1", "req_2")] + [torn])

    start_spool()

    wait_until(lambda: not path.exists())
    assert set(database.rows) == {"req_1", "req_2"}
    assert (tmp_path / "rejected.jsonl").read_bytes() == torn + b"\n"
