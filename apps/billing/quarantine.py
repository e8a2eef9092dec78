"""Rows the database refused, kept beside the spool until an operator re-ingests them.

``<spool dir>/quarantine/*.jsonl`` holds one JSON object a line::

    {"quarantined_at": "<ISO 8601>", "reason": "<the database's message>", "row": {<the spooled row>}}

plus ``"retried_at"`` once a re-ingest found the row refused again. Each process appends to a file of
its own; ``edge_ledger quarantine reingest`` rewrites files after trying their rows again (an operator
may fix a row's values in the file first). Both hold an exclusive ``flock`` on a file while they touch
it, and a writer that finds its file replaced or removed by the time it holds the lock writes to the
new one instead, so no row is lost between them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from apps.billing.rows import Insert, Refusal, Row, encode_line

logger = logging.getLogger(__name__)

DIRECTORY_NAME = "quarantine"


@dataclass(frozen=True)
class Entry:
    """One line of a quarantine file: a refused row, or a line that is not one (a bad hand edit)."""

    path: Path
    number: int
    raw: bytes
    record: dict[str, Any] | None  # the parsed line when it is an object with a "row" object

    @property
    def row(self) -> Row | None:
        return self.record["row"] if self.record is not None else None


@dataclass
class Reingested:
    """What a re-ingest did (or, in a dry run, would do)."""

    inserted: int = 0  # rows already in the ledger count too: request ids make a re-ingest idempotent
    refused: list[Refusal] = field(default_factory=list)  # still refused, with the database's new reason
    unreadable: list[Entry] = field(default_factory=list)  # kept as they are for a human to fix


class Quarantine:
    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        self._own = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}.jsonl"
        self._counted: dict[str, tuple[int, int, int]] = {}  # file name → (inode, bytes read, lines in them)

    def add(self, refusals: list[Refusal]) -> None:
        """Append refused rows to this process's file and log each; raises OSError if the disk will not take them."""
        if not refusals:
            return
        quarantined_at = _now()
        lines = b"".join(
            encode_line({"quarantined_at": quarantined_at, "reason": refusal.reason, "row": refusal.row})
            for refusal in refusals
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = _open_locked(self.directory / self._own, create=True)
        assert fd is not None  # created if missing
        try:
            _write_all(fd, lines)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        for refusal in refusals:
            logger.error("ledger row %s quarantined: %s", refusal.row.get("request_id"), refusal.reason)

    def measure(self) -> tuple[int, int]:
        """(bytes, rows) the quarantine holds. Files only grow between re-ingests, so a file is read only
        from where the last measure stopped, unless it was replaced."""
        total_bytes = total_rows = 0
        counted: dict[str, tuple[int, int, int]] = {}
        for path in self.files():
            try:
                stat = path.stat()
                inode, read, rows = self._counted.get(path.name, (stat.st_ino, 0, 0))
                if inode != stat.st_ino or read > stat.st_size:
                    read = rows = 0
                more, read = _count_lines(path, start=read)
            except FileNotFoundError:
                continue  # re-ingested meanwhile
            counted[path.name] = (stat.st_ino, read, rows + more)
            total_bytes += stat.st_size
            total_rows += rows + more
        self._counted = counted
        return total_bytes, total_rows

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl")) if self.directory.is_dir() else []

    def entries(self) -> list[Entry]:
        """Every entry, oldest file first; read without locks, for listing."""
        return [entry for path in self.files() for entry in _parse(path, _read(path))]

    def reingest(self, insert: Insert, *, dry_run: bool) -> Reingested:
        """Try every quarantined row again: rows that insert leave the quarantine, rows still refused stay
        with their new reason. A dry run reports the same and changes no file (``insert`` must not commit)."""
        report = Reingested()
        for path in self.files():
            fd = _open_locked(path, create=False)
            if fd is None:
                continue  # another re-ingest emptied it
            try:
                kept = _reingest_file(path, insert, report)
                if not dry_run:
                    _replace(path, kept)
            finally:
                os.close(fd)
        return report


def _reingest_file(path: Path, insert: Insert, report: Reingested) -> list[bytes]:
    """Insert the file's rows; returns the lines it must keep."""
    entries = _parse(path, path.read_bytes())
    rows = [entry.row for entry in entries if entry.row is not None]
    refused = {id(refusal.row): refusal for refusal in insert(rows)}
    kept = []
    for entry in entries:
        if entry.record is None:
            report.unreadable.append(entry)
            kept.append(entry.raw + b"\n")
        elif (refusal := refused.get(id(entry.row))) is not None:
            report.refused.append(refusal)
            kept.append(encode_line({**entry.record, "reason": refusal.reason, "retried_at": _now()}))
        else:
            report.inserted += 1
    return kept


def _replace(path: Path, lines: list[bytes]) -> None:
    if not lines:
        path.unlink()
        return
    temporary = path.with_name(f".{path.name}.tmp")  # not *.jsonl: never read as a quarantine file
    with open(temporary, "wb") as file:
        file.write(b"".join(lines))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _open_locked(path: Path, *, create: bool) -> int | None:
    """A descriptor of ``path`` holding its exclusive lock; None if it does not exist (and ``create`` is off)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            if create:
                raise
            return None
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # replaced or removed while we waited for the lock: open what is there now


def _parse(path: Path, data: bytes) -> list[Entry]:
    entries = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("row"), dict):
            record = None
        entries.append(Entry(path=path, number=number, raw=raw, record=record))
    return entries


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""  # re-ingested meanwhile


def _count_lines(path: Path, *, start: int) -> tuple[int, int]:
    """Lines from ``start`` to the end, and where the end was."""
    lines = 0
    with open(path, "rb") as file:
        file.seek(start)
        while chunk := file.read(1 << 20):
            lines += chunk.count(b"\n")
        return lines, file.tell()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _now() -> str:
    return datetime.now(UTC).isoformat()
