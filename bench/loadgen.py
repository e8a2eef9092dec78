"""Load with wrk (pinned to core 0) and read what it prints."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from servers import BenchError, Processes

LUA_SCRIPT = Path(__file__).resolve().parent / "chat.lua"
LOAD_CORE = "0"
TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass(frozen=True)
class Scenario:
    name: str
    stream: bool
    connections: int


SCENARIOS = (
    Scenario("chat c=1", stream=False, connections=1),
    Scenario("chat c=16", stream=False, connections=16),
    Scenario("stream c=1", stream=True, connections=1),
    Scenario("stream c=16", stream=True, connections=16),
)


@dataclass(frozen=True)
class Endpoint:
    """Where to send the load and what to put in each request."""

    url: str
    model: str
    key: str
    path: str = "/v1/chat/completions"
    unique: str = ""  # non-empty: every request asks something new (cache misses), see chat.lua


@dataclass(frozen=True)
class WrkResult:
    completed: int  # responses wrk read in full ("N requests in ...")
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    sent: int  # requests written, including those still in flight when the run ended
    ok: int  # 2xx responses that are complete (a stream ends with [DONE] and carries no error event)
    bad: int  # any other status
    broken: int  # 2xx responses that are not complete: a stream failed after its status was sent
    non_2xx_or_3xx: int
    socket_errors: int
    output: str

    def failures(self) -> list[str]:
        problems = []
        if self.bad or self.non_2xx_or_3xx:
            problems.append(f"{max(self.bad, self.non_2xx_or_3xx)} non-2xx responses")
        if self.broken:
            problems.append(f"{self.broken} 2xx responses with an error or cut short in the body")
        if self.socket_errors:
            problems.append(f"{self.socket_errors} socket errors")
        if self.completed == 0:
            problems.append("no request completed")
        return problems


def run_wrk(processes: Processes, endpoint: Endpoint, scenario: Scenario, *, duration_s: float) -> WrkResult:
    return finish_wrk(processes, start_wrk(processes, endpoint, scenario, duration_s=duration_s), duration_s)


def start_wrk(processes: Processes, endpoint: Endpoint, scenario: Scenario, *,
              duration_s: float) -> subprocess.Popen[bytes]:
    argv = [
        "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{scenario.connections}", f"-d{duration_s:g}s",
        "--timeout", "30s", "--latency", "-s", str(LUA_SCRIPT), endpoint.url,
    ]
    env = {
        **os.environ, "BENCH_PATH": endpoint.path, "BENCH_MODEL": endpoint.model,
        "BENCH_KEY": endpoint.key, "BENCH_STREAM": "1" if scenario.stream else "0", "BENCH_UNIQUE": endpoint.unique,
    }
    return processes.spawn(argv, env=env, cwd=LUA_SCRIPT.parent)


def finish_wrk(processes: Processes, child: subprocess.Popen[bytes], duration_s: float) -> WrkResult:
    try:
        output, _ = child.communicate(timeout=duration_s + 60)
    finally:
        processes.stop(child)
    text = output.decode(errors="replace")
    if child.returncode != 0:
        raise BenchError(f"wrk exited with {child.returncode}:\n{text}")
    return parse_wrk(text)


def parse_wrk(text: str) -> WrkResult:
    def number(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, text, re.MULTILINE)
        if match is None:
            if default is not None:
                return default
            raise BenchError(f"cannot find {pattern!r} in wrk's output:\n{text}")
        return match.group(1)

    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(
        completed=int(number(r"^\s*(\d+) requests in")),
        seconds=_to_ms(*re.findall(r"requests in ([\d.]+)(\w+),", text)[0]) / 1000,
        rps=float(number(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=_percentile_ms(text, "50"),
        p99_ms=_percentile_ms(text, "99"),
        sent=int(number(r"^BENCH sent=(\d+)")),
        ok=int(number(r"^BENCH .* ok=(\d+)")),
        bad=int(number(r"^BENCH .* bad=(\d+)")),
        broken=int(number(r"^BENCH .* broken=(\d+)")),
        non_2xx_or_3xx=int(number(r"Non-2xx or 3xx responses: (\d+)", "0")),
        socket_errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        output=text,
    )


def _percentile_ms(text: str, percent: str) -> float:
    """One line of wrk's "Latency Distribution" block, e.g. ``     99%   12.31ms``."""
    match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.MULTILINE)
    if match is None:
        raise BenchError(f"no {percent}% line in wrk's latency distribution:\n{text}")
    return _to_ms(match.group(1), match.group(2))


def _to_ms(value: str, unit: str) -> float:
    return float(value) * TIME_UNITS_MS[unit]
