"""A crash-safe buffer between the request path and the ledger table.

Each row is appended to a local segment file before the request finishes (one ``write()``: the
kernel has it, so a SIGKILL loses nothing), and a background thread moves sealed segments into
the database in batches. A segment file is deleted only after its rows are committed.

Each process holds an exclusive ``flock`` on the segments it owns. A segment nobody holds a lock
on belongs to a process that died: any gateway process adopts it (at start-up and every
``ADOPT_INTERVAL_S``), inserts its rows and deletes it. Inserts are idempotent by request id, so a
segment inserted twice (a crash between commit and delete, or two adopters) still counts once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger(__name__)

Row = dict[str, Any]
Insert = Callable[[list[Row]], None]  # commits rows idempotently, or raises to be retried later

ADOPT_INTERVAL_S = 30.0
MAX_BACKOFF_S = 10.0


@dataclass(eq=False)
class Segment:
    path: Path
    fd: int
    rows: list[Row] = field(default_factory=list)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self.fd)  # releases the lock


class LedgerSpool:
    def __init__(self, directory: Path, *, insert: Insert, flush_interval_s: float, fsync: bool) -> None:
        self.directory = directory
        self.insert = insert
        self.flush_interval_s = flush_interval_s
        self.fsync = fsync
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._sealed: list[Segment] = []
        self._sequence = 0
        self._active: Segment | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._active = self._open_segment()
        self._thread = threading.Thread(target=self._run, name="ledger-spool", daemon=True)
        self._thread.start()

    def append(self, row: Row) -> None:
        line = orjson.dumps(row) + b"\n"
        with self._lock:
            if self._active is None:
                raise RuntimeError("the ledger spool is not running")
            os.write(self._active.fd, line)
            if self.fsync:
                os.fsync(self._active.fd)
            self._active.rows.append(row)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Flush what can be flushed; whatever cannot stays on disk for the next start."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._lock:
            if self._active is not None and not self._active.rows:
                self._active.discard()  # leave no empty segments behind for adopters to open
                self._active = None

    def pending(self) -> int:
        with self._lock:
            active = len(self._active.rows) if self._active else 0
            return active + sum(len(segment.rows) for segment in self._sealed)

    def _run(self) -> None:
        self._adopt_orphans()
        next_adoption = time.monotonic() + ADOPT_INTERVAL_S
        backoff = self.flush_interval_s
        while True:
            self._wake.wait(backoff)
            self._wake.clear()
            stopping = self._stopping
            backoff = self.flush_interval_s if self._flush() else min(backoff * 2, MAX_BACKOFF_S)
            if stopping:
                return
            if time.monotonic() >= next_adoption:
                self._adopt_orphans()
                next_adoption = time.monotonic() + ADOPT_INTERVAL_S

    def _flush(self) -> bool:
        """Seal the active segment and insert every sealed one; False if the database refused."""
        with self._lock:
            if self._active is not None and self._active.rows:
                self._sealed.append(self._active)
                self._active = self._open_segment()
            sealed = list(self._sealed)
        for segment in sealed:
            try:
                self.insert(segment.rows)
            except Exception:
                logger.warning("ledger insert failed; %d rows stay spooled", self.pending(), exc_info=True)
                return False
            with self._lock:
                self._sealed.remove(segment)
            segment.discard()
        return True

    def _open_segment(self) -> Segment:
        self._sequence += 1
        name = f"ledger-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}-{self._sequence}"
        temporary = self.directory / f"{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Locked before it gets the name adopters look for, so it is never mistaken for an orphan.
        path = temporary.rename(self.directory / f"{name}.jsonl")
        return Segment(path=path, fd=fd)

    def _adopt_orphans(self) -> None:
        for path in sorted(self.directory.glob("ledger-*.jsonl")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # its owner committed and deleted it meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live process owns it
                continue
            orphan = Segment(path=path, fd=fd, rows=self._read_rows(path))
            try:
                self.insert(orphan.rows)
            except Exception:
                os.close(fd)
                logger.warning("could not replay ledger segment %s; will retry", path.name, exc_info=True)
                return
            logger.info("replayed %d ledger rows from %s", len(orphan.rows), path.name)
            orphan.discard()

    def _read_rows(self, path: Path) -> list[Row]:
        rows = []
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                # Only a write torn by a crash can leave this; keep the bytes for a human.
                with open(self.directory / "rejected.jsonl", "ab") as rejected:
                    rejected.write(line + b"\n")
                logger.error("unreadable ledger line %d in %s moved to rejected.jsonl", number, path.name)
        return rows
