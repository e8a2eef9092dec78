"""The processes a benchmark run starts: spawning them pinned to a core, and always stopping them.

Every child gets its own session (process group), so one ``killpg`` ends it with anything it
started, and a Ctrl-C in the terminal reaches only the benchmark, whose ``finally`` then stops
the children in order (the gateway gets SIGTERM first, so its lifespan shutdown runs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class BenchError(RuntimeError):
    """The benchmark cannot produce figures worth printing; the message says why."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class CpuTimes:
    user_s: float
    system_s: float  # in the kernel on the process's behalf: sockets, thread creation, file I/O
    loop_s: float  # of which the main thread, where uvicorn's event loop runs

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s

    def __sub__(self, before: CpuTimes) -> CpuTimes:
        return CpuTimes(self.user_s - before.user_s, self.system_s - before.system_s, self.loop_s - before.loop_s)


def _stat_times(path: Path) -> tuple[float, float]:
    """utime and stime in seconds from a /proc stat file (fields 14 and 15 in proc(5))."""
    stat = path.read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "(comm)": state is [0], utime [11], stime [12]
    return int(fields[11]) / CLOCK_TICKS_PER_S, int(fields[12]) / CLOCK_TICKS_PER_S


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the whole process (all its threads, live or ended) so far."""
        return self.cpu_times().total_s

    def cpu_times(self) -> CpuTimes:
        """The process's CPU split by mode, and the main thread's (the event loop's) share of it."""
        user, system = _stat_times(Path(f"/proc/{self.pid}/stat"))
        loop_user, loop_system = _stat_times(Path(f"/proc/{self.pid}/task/{self.pid}/stat"))
        return CpuTimes(user_s=user, system_s=system, loop_s=loop_user + loop_system)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise BenchError(f"{self.name}: no VmRSS in /proc/{self.pid}/status")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Processes:
    """Owns every child process of a run; leaving the ``with`` block stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._children: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], *, env: dict[str, str], cwd: Path,
              log_path: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a child in its own session; without ``log_path`` its stdout is a pipe to read."""
        with open(log_path or os.devnull, "ab") as log:  # the child keeps its own copy of the file
            child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log if log_path else subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self._children.append(child)
        return child

    def start_server(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path,
                     port: int, ready_path: str) -> Server:
        log_path = self.log_dir / f"{name}.log"
        server = Server(name=name, url=f"http://127.0.0.1:{port}",
                        process=self.spawn(argv, env=env, cwd=cwd, log_path=log_path), log_path=log_path)
        wait_until_ready(server, ready_path)
        return server

    def stop(self, child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            _signal_group(child, signal.SIGTERM)
            try:
                child.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.wait()
        else:
            _signal_group(child, signal.SIGKILL)  # anything it left behind in its group
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self._children)):
            self.stop(child)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop_all()


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signum)  # the child leads its own session, so its pgid is its pid


def wait_until_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        server.check_alive()
        try:
            if httpx.get(server.url + path, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{server.name} did not answer {path} within {START_TIMEOUT_S:.0f}s:\n{server.log_tail()}")
