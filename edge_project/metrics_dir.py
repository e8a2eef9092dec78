"""This gateway instance's Prometheus multiprocess directory: one per instance, fresh at its start.

uvicorn's workers are separate processes, so each counts in its own files and ``/metrics`` adds up
every file of the directory: whichever worker answers a scrape, it reports the instance's totals, and
a worker that dies or is replaced leaves its counts behind, so no counter goes backwards.

An instance is one server process and the workers it supervises. Workers that uvicorn started are its
``multiprocessing`` children and find the directory by their supervisor's pid; a server without
workers is its own instance. The directory is named after that pid *and* the process's start time, so
it is new when the instance starts (a pid the kernel reuses never inherits a dead instance's counts)
and two instances on one host never share or wipe each other's files. Directories of instances that
no longer run are removed by the next one to start. It must be called before ``prometheus_client`` is
first imported: the library chooses its file-backed values at import time.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shutil
from pathlib import Path

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # what prometheus_client reads


def prepare_metrics_dir(base: Path) -> Path:
    """Create (or join) this instance's directory under ``base`` and point prometheus_client at it."""
    base.mkdir(parents=True, exist_ok=True)
    directory = base / instance_name(instance_pid())
    with open(base / ".lock", "a") as lock:  # the instance's workers start together; so may others
        fcntl.flock(lock, fcntl.LOCK_EX)
        for child in base.iterdir():
            if child.is_dir() and child != directory and not is_running(child.name):
                shutil.rmtree(child, ignore_errors=True)
        directory.mkdir(exist_ok=True)
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)
    return directory


def instance_pid() -> int:
    """The supervisor's pid in a uvicorn worker (a multiprocessing child), else this process's."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getpid()


def instance_name(pid: int) -> str:
    started = start_time(pid)
    return f"{pid}-{started}" if started else str(pid)


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "" where /proc cannot say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else ""  # field 22 of proc(5); the list starts at field 3


def is_running(name: str) -> bool:
    """Whether the instance a directory is named after still runs (names that are not ours: assumed so)."""
    pid_text, _, started = name.partition("-")
    if not pid_text.isdigit():
        return True
    if not is_alive(int(pid_text)):
        return False
    return not started or start_time(int(pid_text)) == started


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive, though perhaps not ours (the start time decides)
    return True
