"""The ledger spool on its own: rows reach the database once, and survive whatever stops them getting there."""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.billing import spool as spool_module
from apps.billing.rows import Refusal, Row
from apps.billing.spool import LedgerSpool
from tests.harness.waiting import wait_until


class Database:
    """Stands in for the ledger table: keeps rows by request id, refuses rows marked "bad", or raises while down."""

    def __init__(self, *, down: bool = False) -> None:
        self.rows: dict[str, Row] = {}
        self.down = down

    def insert(self, rows: list[Row]) -> list[Refusal]:
        if self.down:
            raise ConnectionError("database is down")
        for row in rows:
            if "bad" not in row:
                self.rows.setdefault(row["request_id"], row)
        return [Refusal(row, row["bad"]) for row in rows if "bad" in row]


@pytest.fixture
def database() -> Database:
    return Database()


@pytest.fixture
def start_spool(tmp_path: Path, database: Database) -> Iterator[Callable[..., LedgerSpool]]:
    spools: list[LedgerSpool] = []

    def start(**options: Any) -> LedgerSpool:
        spool = LedgerSpool(tmp_path, insert=database.insert, flush_interval_s=0.01, fsync=False, **options)
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


def test_it_quarantines_a_row_the_database_refuses_and_commits_the_rows_around_it(tmp_path, database, start_spool):
    spool = start_spool()
    first, refused, third = rows("req_1", "req_2", "req_3")
    for row in (first, {**refused, "bad": "DataError: no"}, third):
        spool.append(row)

    wait_until(lambda: set(database.rows) == {"req_1", "req_3"} and spool.pending() == 0)
    spool.append(rows("req_4")[0])
    wait_until(lambda: "req_4" in database.rows)

    [entry] = spool.quarantine.entries()
    assert entry.row == {**refused, "bad": "DataError: no"} and entry.record is not None
    assert entry.record["reason"] == "DataError: no"


def test_it_adopts_the_segments_after_one_it_cannot_read(tmp_path, database, start_spool):
    (tmp_path / "ledger-deadhost-1-a.jsonl").mkdir()  # sorts first; it opens and locks, but cannot be read
    path = orphan(tmp_path, "b", [orjson.dumps(row) for row in rows("req_1")])

    start_spool()

    wait_until(lambda: not path.exists())
    assert set(database.rows) == {"req_1"}


def test_it_reports_how_long_its_oldest_uncommitted_row_has_waited(tmp_path, database, start_spool):
    database.down = True
    spool = start_spool()
    assert spool.status().oldest_age_s is None
    spool.append(rows("req_1")[0])

    wait_until(lambda: spool.status().last_flush_failed)
    waited = spool.status().oldest_age_s
    assert spool.status().backlog == 1 and waited is not None
    wait_until(lambda: (spool.status().oldest_age_s or 0) > waited + 0.05)  # it grows while nothing commits

    database.down = False
    wait_until(lambda: spool.status().backlog == 0, timeout_s=3)
    assert (spool.status().oldest_age_s, spool.status().last_flush_failed) == (None, False)


def test_it_reports_itself_full_past_its_bound_and_still_writes_every_row(tmp_path, database, start_spool, caplog,
                                                                          monkeypatch):
    monkeypatch.setattr(spool_module, "MEASURE_INTERVAL_S", 0.01)
    database.down = True
    spool = start_spool(max_bytes=2000)
    measures = count_calls(monkeypatch, spool.quarantine, "measure")
    padded = [{**row, "padding": "x" * 400} for row in rows(*(f"req_{number}" for number in range(8)))]

    for row in padded[:2]:
        spool.append(row)
    assert not spool.status().full
    for row in padded[2:]:
        spool.append(row)

    assert spool.status().full  # at once: this process's own rows count before the next measure
    assert spooled_rows(tmp_path) == padded
    wait_until(lambda: len(measures) >= 3)  # measured again and again past the bound...
    full_lines = [record for record in caplog.records if "past its bound" in record.getMessage()]
    assert len(full_lines) == 1 and full_lines[0].levelno == logging.ERROR  # ...and said so once
    database.down = False
    wait_until(lambda: not spool.status().full, timeout_s=3)
    assert len(database.rows) == 8


def test_it_keeps_a_row_the_disk_refuses_in_memory_and_commits_it(tmp_path, database, start_spool, caplog):
    database.down = True
    spool = start_spool()
    active = spool._active
    assert active is not None
    full_disk = os.open("/dev/full", os.O_WRONLY)  # every write fails with ENOSPC
    os.dup2(full_disk, active.fd)
    os.close(full_disk)

    spool.append(rows("req_1")[0])  # does not raise into the request

    assert "kept in memory" in caplog.text
    database.down = False
    wait_until(lambda: "req_1" in database.rows, timeout_s=3)


def count_calls(monkeypatch: pytest.MonkeyPatch, target: object, name: str) -> list[None]:
    calls: list[None] = []
    original = getattr(target, name)

    def counted(*args: Any) -> Any:
        calls.append(None)
        return original(*args)

    monkeypatch.setattr(target, name, counted)
    return calls


def spooled_rows(directory: Path) -> list[Row]:
    return [orjson.loads(line) for path in sorted(directory.glob("ledger-*.jsonl"))
            for line in path.read_bytes().splitlines()]
