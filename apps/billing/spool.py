"""A crash-safe buffer between the request path and the ledger table.

Each row is appended to a local segment file before the request finishes (one ``write()``: the
kernel has it, so a SIGKILL loses nothing), and a background thread moves sealed segments into
the database in batches. A segment file is deleted only after its rows are committed.

Each process holds an exclusive ``flock`` on the segments it owns. A segment nobody holds a lock
on belongs to a process that died: any gateway process adopts it (at start-up and every
``ADOPT_INTERVAL_S``), inserts its rows and deletes it. Inserts are idempotent by request id, so a
segment inserted twice (a crash between commit and delete, or two adopters) still counts once.

No row stops the others. The insert returns the rows the database refused for a reason of its own
(a value it cannot store, a tenant that does not exist); they go to the quarantine beside the
segments (apps.billing.quarantine) and their segment is done. Only an insert that raises (the
database cannot take rows at all) keeps segments for a retry with backoff. A segment that cannot be
read is logged and skipped; adoption goes on with the next.

Disk. The thread measures the directory (every process's segments, and the quarantine) at most every
``MEASURE_INTERVAL_S`` and adds what this process appended since. Past ``max_bytes`` the spool keeps
writing, because a row on disk beats a row lost, but reports itself full (``status().full``) so the
process can stop taking traffic (/health/ready), and logs it at most every ``LOG_INTERVAL_S``. A row
the disk refuses (ENOSPC, EIO) is kept in memory and committed with the others: only the process
dying before the next flush would lose it, and that is logged too.
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

import orjson

from apps.billing.quarantine import DIRECTORY_NAME, Quarantine
from apps.billing.rows import Insert, Row, encode_line

logger = logging.getLogger(__name__)

ADOPT_INTERVAL_S = 30.0
MAX_BACKOFF_S = 10.0
MEASURE_INTERVAL_S = 1.0
LOG_INTERVAL_S = 60.0  # at most one line per this for a full spool, and for rows the disk refused


@dataclass(frozen=True)
class SpoolStatus:
    backlog: int  # rows appended by this process and neither committed nor quarantined yet
    oldest_age_s: float | None  # how long the oldest of them has waited
    last_flush_failed: bool  # the last attempt to commit rows (own or adopted) could not reach the database
    disk_bytes: int  # the directory's segments and quarantine
    quarantined: int  # rows in the quarantine
    full: bool  # disk_bytes at or past the bound


NOTHING_SPOOLED = SpoolStatus(
    backlog=0, oldest_age_s=None, last_flush_failed=False, disk_bytes=0, quarantined=0, full=False
)


@dataclass(eq=False)
class Segment:
    path: Path
    fd: int
    rows: list[Row] = field(default_factory=list)
    first_at: float = 0.0  # time.monotonic() when its first row came

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self.fd)  # releases the lock


class LedgerSpool:
    def __init__(
        self, directory: Path, *, insert: Insert, flush_interval_s: float, fsync: bool, max_bytes: int = 1 << 30,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self.directory = directory
        self.insert = insert
        self.release = release  # run on the thread as it ends: what ``insert`` holds (a database connection)
        self.flush_interval_s = flush_interval_s
        self.fsync = fsync
        self.max_bytes = max_bytes
        self.quarantine = Quarantine(directory / DIRECTORY_NAME, fsync=fsync)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._sealed: list[Segment] = []
        self._sequence = 0
        self._active: Segment | None = None
        self._thread: threading.Thread | None = None
        self._last_commit_failed = False
        self._disk_bytes = 0  # at the last measure
        self._appended_bytes = 0  # by this process since then
        self._quarantined = 0
        self._next_measure = 0.0
        self._unreadable: set[str] = set()  # segments already logged as unreadable
        self._logged_at: dict[str, float] = {}  # rate-limited log lines by topic

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._active = self._open_segment()
        self._thread = threading.Thread(target=self._run, name="ledger-spool", daemon=True)
        self._thread.start()

    def append(self, row: Row) -> None:
        line = encode_line(row)
        with self._lock:
            active = self._active
            if active is None:
                raise RuntimeError("the ledger spool is not running")
            if not active.rows:
                active.first_at = time.monotonic()
            self._write(active.fd, line)
            active.rows.append(row)
            self._appended_bytes += len(line)

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
        return self.status().backlog

    def status(self) -> SpoolStatus:
        """What health checks report; no I/O (the thread measures the disk)."""
        with self._lock:
            waiting = [segment for segment in (*self._sealed, self._active) if segment is not None and segment.rows]
            disk_bytes = self._disk_bytes + self._appended_bytes
        oldest = min((segment.first_at for segment in waiting), default=None)
        return SpoolStatus(
            backlog=sum(len(segment.rows) for segment in waiting),
            oldest_age_s=None if oldest is None else time.monotonic() - oldest,
            last_flush_failed=self._last_commit_failed,
            disk_bytes=disk_bytes,
            quarantined=self._quarantined,
            full=disk_bytes >= self.max_bytes,
        )

    def _write(self, fd: int, line: bytes) -> None:
        try:
            if os.write(fd, line) != len(line):
                raise OSError("short write: the disk is full")
            if self.fsync:
                os.fsync(fd)
        except OSError:
            self._log_sometimes("write", logging.ERROR, "could not spool a ledger row to %s; it is kept in memory "
                                "until the next flush commits it", self.directory, exc_info=True)

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._cycle(self.release)

    def _serve(self) -> None:
        self._cycle(self._adopt_orphans)
        next_adoption = time.monotonic() + ADOPT_INTERVAL_S
        backoff = self.flush_interval_s
        while True:
            self._wake.wait(backoff)
            self._wake.clear()
            stopping = self._stopping
            flushed = self._cycle(self._flush)
            backoff = self.flush_interval_s if flushed else min(backoff * 2, MAX_BACKOFF_S)
            if stopping:
                return
            if time.monotonic() >= next_adoption:
                self._cycle(self._adopt_orphans)
                next_adoption = time.monotonic() + ADOPT_INTERVAL_S
            if time.monotonic() >= self._next_measure:
                self._cycle(self._measure)

    def _cycle(self, step: Callable[[], object]) -> bool:
        """Run one step of the thread; nothing it raises may end the thread (rows would stop flowing)."""
        try:
            return step() is not False
        except Exception:
            logger.exception("ledger spool step %s failed; the spool carries on", step.__name__)
            return False

    def _flush(self) -> bool:
        """Seal the active segment and commit every sealed one; False if the database could not take rows."""
        self._seal()
        with self._lock:
            sealed = list(self._sealed)
        for segment in sealed:
            if not self._commit(segment.rows, segment.path.name):
                return False
            with self._lock:
                self._sealed.remove(segment)
            segment.discard()
        return True

    def _seal(self) -> None:
        with self._lock:
            if self._active is None or not self._active.rows:
                return
            try:
                fresh = self._open_segment()
            except OSError:  # no room for a new file: keep appending to this one and seal it later
                self._log_sometimes("seal", logging.ERROR, "could not open a new ledger segment", exc_info=True)
                return
            self._sealed.append(self._active)
            self._active = fresh

    def _commit(self, rows: list[Row], source: str) -> bool:
        """Insert rows and quarantine the refused ones; False, every row kept, if either could not be done."""
        try:
            self.quarantine.add(self.insert(rows))
        except Exception:
            self._last_commit_failed = True
            logger.warning("could not commit %d ledger rows from %s; they stay spooled", len(rows), source,
                           exc_info=True)
            return False
        self._last_commit_failed = False
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
            orphan = self._claim(path)
            if orphan is None:
                continue
            if not self._commit(orphan.rows, path.name):
                os.close(orphan.fd)
                return  # the database cannot take rows: the other orphans wait for the next round too
            logger.info("replayed %d ledger rows from %s", len(orphan.rows), path.name)
            orphan.discard()

    def _claim(self, path: Path) -> Segment | None:
        """The orphan at ``path``, locked, with its rows; None if it is no orphan (owned, gone) or unreadable."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None  # its owner committed and deleted it meanwhile
        except OSError as error:
            self._skip_unreadable(path, error)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # a live process owns it
            return None
        try:
            return Segment(path=path, fd=fd, rows=self._read_rows(path))
        except OSError as error:
            os.close(fd)
            self._skip_unreadable(path, error)
            return None

    def _skip_unreadable(self, path: Path, error: OSError) -> None:
        if path.name not in self._unreadable:
            self._unreadable.add(path.name)
            logger.error("ledger segment %s cannot be read (%s); skipped until it can", path.name, error)

    def _read_rows(self, path: Path) -> list[Row]:
        rows = []
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                rows.append(row)
                continue
            # Only a write torn by a crash (or a power loss) can leave this; keep the bytes for a human.
            with open(self.directory / "rejected.jsonl", "ab") as rejected:
                rejected.write(line + b"\n")
            logger.error("unreadable ledger line %d in %s moved to rejected.jsonl", number, path.name)
        return rows

    def _measure(self) -> None:
        self._next_measure = time.monotonic() + MEASURE_INTERVAL_S
        with self._lock:
            appended = self._appended_bytes  # on disk by now, so in what the scan finds
        with os.scandir(self.directory) as entries:
            segments = sum(_size(entry) for entry in entries)
        quarantine_bytes, self._quarantined = self.quarantine.measure()
        with self._lock:
            self._disk_bytes = segments + quarantine_bytes
            self._appended_bytes -= appended  # rows appended during the scan may count twice until the next: never less
        if self._disk_bytes >= self.max_bytes:
            self._log_sometimes("full", logging.ERROR, "the ledger spool %s holds %d bytes, past its bound of %d: "
                                "rows are still written, and the process reports itself not ready",
                                self.directory, self._disk_bytes, self.max_bytes)

    def _log_sometimes(self, topic: str, level: int, message: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now - self._logged_at.get(topic, -LOG_INTERVAL_S) >= LOG_INTERVAL_S:
            self._logged_at[topic] = now
            logger.log(level, message, *args, exc_info=exc_info)


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat(follow_symlinks=False).st_size if entry.is_file(follow_symlinks=False) else 0
    except FileNotFoundError:
        return 0  # committed and deleted meanwhile
