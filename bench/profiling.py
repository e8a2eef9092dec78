"""Where the gateway's CPU goes under load, next to the floor's: py-spy samples, summarised as text.

py-spy (pinned in requirements/dev.txt; attaching needs root or ptrace rights) records each server
while wrk loads it, sampling only the thread that holds the GIL (``--gil``): in one Python process
that is where the CPU goes, whichever thread (event loop, sync_to_async executors, ledger spool)
does the work. ``--nonblocking`` leaves the process running while its stacks are read (pausing
it 200 times a second slowed it and skewed the comparison). Samples are turned into microseconds
per request (samples / rate / requests), so the gateway and the floor can be compared line by
line although they serve different rates.
Flame graphs (SVG) and the raw collapsed stacks are written beside the summary.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loadgen import LOAD_CORE, Endpoint, Scenario, finish_wrk, start_wrk
from servers import BenchError, Processes, Server

FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
SAMPLE_RATE_HZ = 200
GATEWAY_DIRS = ("apps/", "edge_project/")
LOAD_LEAD_S = 1.0  # load runs this long before sampling starts, to reach steady state
TOP = 15
# Steps both servers take, by the function each one takes it in (floor_app.py / the gateway).
SHARED_STEPS = {
    "Django's ASGI handler (the whole request)": {"ASGIHandler.handle", "ASGIHandler.handle.<locals>.process_request"},
    "the view (floor: _forward; gateway: dispatch)": {"_forward", "GatewayView.async_dispatch"},
    "the upstream call (httpx send + read)": {"AsyncClient.post", "AsyncClient.send", "OpenAIWireAdapter.chat"},
    "writing the response to the client": {"ASGIHandler.send_response"},
}


@dataclass
class Breakdown:
    """One server's samples, counted several ways, with how many requests they were spread over."""

    requests: float = 0.0
    samples: int = 0
    by_thread: Counter[str] = field(default_factory=Counter)
    by_package: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)  # SHARED_STEPS, once per stack

    def us_per_request(self, count: float) -> float:
        return count / SAMPLE_RATE_HZ / self.requests * 1e6 if self.requests else 0.0


def py_spy_binary() -> str:
    venv_bin = Path(__file__).resolve().parents[1] / ".venv" / "bin"
    found = shutil.which("py-spy", path=str(venv_bin)) or shutil.which("py-spy")
    if found is None:
        raise BenchError("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def profile_servers(processes: Processes, targets: list[tuple[str, Server, Endpoint]], scenario: Scenario,
                    *, duration_s: float, out_dir: Path) -> str:
    """Record each target (flame graph, then raw stacks) under the same load; return the text summary."""
    breakdowns = {}
    for name, server, endpoint in targets:
        svg, raw = out_dir / f"{name}.svg", out_dir / f"{name}.txt"
        record_under_load(processes, server, endpoint, scenario, duration_s=duration_s, output=svg, fmt="flamegraph")
        rps = record_under_load(processes, server, endpoint, scenario, duration_s=duration_s, output=raw, fmt="raw")
        breakdowns[name] = breakdown(raw.read_text(), requests=rps * duration_s)
    summary = describe(breakdowns)
    (out_dir / "summary.txt").write_text(summary)
    return summary


def record_under_load(processes: Processes, server: Server, endpoint: Endpoint, scenario: Scenario,
                      *, duration_s: float, output: Path, fmt: str) -> float:
    """Run py-spy while wrk loads the server; returns the req/s wrk saw."""
    load_s = duration_s + LOAD_LEAD_S + 2  # the load outlasts the recording at both ends
    load = start_wrk(processes, endpoint, scenario, duration_s=load_s)
    time.sleep(LOAD_LEAD_S)
    log_path = output.with_suffix(".log")
    recorder = processes.spawn(
        ["taskset", "-c", LOAD_CORE, py_spy_binary(), "record", "--pid", str(server.pid),
         "--duration", f"{duration_s:g}", "--rate", str(SAMPLE_RATE_HZ), "--gil", "--threads", "--nonblocking",
         "--format", fmt, "-o", str(output)],
        env=dict(os.environ), cwd=output.parent, log_path=log_path,
    )
    recorded = recorder.wait(duration_s + 60)
    result = finish_wrk(processes, load, load_s)
    if recorded != 0 or not output.exists():
        raise BenchError(f"py-spy failed ({recorded}):\n{log_path.read_text(errors='replace')}")
    if result.failures():
        raise BenchError(f"{server.name} failed under profiling: {', '.join(result.failures())}\n{server.log_tail()}")
    return result.rps


def breakdown(text: str, *, requests: float) -> Breakdown:
    """Count py-spy's raw output: one ``thread (id): name;frame;...;leaf COUNT`` line per stack."""
    counted = Breakdown(requests=requests)
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        thread, _, stack = stack.partition(";") if stack.startswith("thread (") else ("", "", stack)
        frames = [frame for frame in map(_parse, stack.split(";")) if frame is not None]
        if not frames:
            continue
        count = int(count_text)
        counted.samples += count
        counted.steps["all (every thread)"] += count
        counted.by_thread[_thread_name(thread)] += count
        counted.by_package[_package(frames[-1][1])] += count
        counted.self_time[_label(*frames[-1])] += count
        for label in {_label(*frame) for frame in frames}:
            counted.inclusive[label] += count
        functions = {function for function, _ in frames}
        for step, names in SHARED_STEPS.items():
            if functions & names:
                counted.steps[step] += count
    return counted


def describe(breakdowns: dict[str, Breakdown]) -> str:
    """The gateway in µs of GIL-holding time per request, and beside the floor when it was recorded."""
    gateway, floor = breakdowns["gateway"], breakdowns.get("floor")
    lines = [f"GIL-holding time per request, from py-spy --gil at {SAMPLE_RATE_HZ} Hz (idle time excluded)"]
    for name, counted in breakdowns.items():
        lines.append(f"  {name}: {counted.samples} samples over ~{counted.requests:.0f} requests = "
                     f"{counted.us_per_request(counted.samples):.0f} us/request")
    if floor is not None:
        lines += _compared("steps both take, inclusive", gateway, floor, lambda b: b.steps, len(SHARED_STEPS))
        lines += _compared("by library of the running function", gateway, floor, lambda b: b.by_package, 14)
        lines += _compared("by function, self time: largest gateway - floor differences", gateway, floor,
                           lambda b: b.self_time, TOP)
    lines += _listed("gateway by thread", gateway, gateway.by_thread, 6)
    gateway_code = Counter({label: n for label, n in gateway.inclusive.items()
                            if label.rsplit(" ", 1)[-1].startswith(GATEWAY_DIRS)})
    lines += _listed("gateway code on the stack (inclusive)", gateway, gateway_code, TOP + 5)
    lines += _listed("gateway by function (self)", gateway, gateway.self_time, TOP)
    return "\n".join(lines) + "\n"


def _compared(title: str, gateway: Breakdown, floor: Breakdown, key: Callable[[Breakdown], Counter[str]],
              keep: int) -> list[str]:
    ours, theirs = key(gateway), key(floor)
    diffs = {label: gateway.us_per_request(ours[label]) - floor.us_per_request(theirs[label])
             for label in set(ours) | set(theirs)}
    lines = [f"{title} (us/request):", f"  {'gateway':>8} {'floor':>8} {'diff':>8}  what"]
    for label, diff in sorted(diffs.items(), key=lambda item: -abs(item[1]))[:keep]:
        lines.append(f"  {gateway.us_per_request(ours[label]):8.0f} {floor.us_per_request(theirs[label]):8.0f} "
                     f"{diff:+8.0f}  {label}")
    return lines


def _listed(title: str, counted: Breakdown, counter: Counter[str], keep: int) -> list[str]:
    lines = [f"{title} (us/request, share of samples):"]
    lines += [f"  {counted.us_per_request(n):8.0f} {n / max(counted.samples, 1):6.1%}  {label}"
              for label, n in counter.most_common(keep)]
    return lines


def _thread_name(frame: str) -> str:
    """``thread (1234): ThreadPoolExecutor-7_0`` → ``ThreadPoolExecutor-*``: pool threads as one."""
    name = frame.partition(": ")[2] or frame or "(unknown)"
    return re.sub(r"-\d+(_\d+)?$", "-*", name)


def _parse(frame: str) -> tuple[str, str] | None:
    match = FRAME.match(frame.strip())
    return (match.group("function"), _short_path(match.group("path"))) if match else None


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _label(function: str, path: str) -> str:
    return f"{function} {path}"


def _package(path: str) -> str:
    """The gateway's app (``gateway: apps/proxy``), or the top-level package or stdlib module."""
    if path.startswith(GATEWAY_DIRS):
        return "gateway: " + "/".join(path.split("/")[:2])
    return path.split("/", 1)[0].removesuffix(".py")
