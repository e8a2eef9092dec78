"""Where the gateway spends its CPU under load: py-spy samples, summarised as text.

py-spy (``pip install py-spy`` into the venv; attaching needs root or ptrace rights) records the
gateway while wrk loads it; the flame graph goes to an SVG and the raw collapsed stacks are
summarised here: the functions that were on CPU (self), the project's and libraries' functions
that were on the stack (inclusive), and the library the on-CPU function belongs to.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path

from loadgen import LOAD_CORE, Endpoint, Scenario, finish_wrk, start_wrk
from servers import BenchError, Processes, Server

FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
SAMPLE_RATE_HZ = 200
LOAD_LEAD_S = 1.0  # load runs this long before sampling starts, to reach steady state


def py_spy_binary() -> str:
    venv_bin = Path(__file__).resolve().parents[1] / ".venv" / "bin"
    found = shutil.which("py-spy", path=str(venv_bin)) or shutil.which("py-spy")
    if found is None:
        raise BenchError("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def profile_gateway(processes: Processes, gateway: Server, endpoint: Endpoint, scenario: Scenario,
                    *, duration_s: float, out_dir: Path) -> str:
    """Record twice under the same load (flame graph, then raw stacks) and return the text summary."""
    svg, raw = out_dir / "gateway-profile.svg", out_dir / "gateway-profile.txt"
    for output, fmt in ((svg, "flamegraph"), (raw, "raw")):
        _record_under_load(processes, gateway, endpoint, scenario, duration_s=duration_s, output=output, fmt=fmt)
    summary = summarise_collapsed(raw.read_text())
    (out_dir / "gateway-profile-summary.txt").write_text(summary)
    return summary


def _record_under_load(processes: Processes, gateway: Server, endpoint: Endpoint, scenario: Scenario,
                       *, duration_s: float, output: Path, fmt: str) -> None:
    load_s = duration_s + LOAD_LEAD_S + 2  # the load outlasts the recording at both ends
    load = start_wrk(processes, endpoint, scenario, duration_s=load_s)
    time.sleep(LOAD_LEAD_S)
    log_path = output.with_suffix(".log")
    recorder = processes.spawn(
        ["taskset", "-c", LOAD_CORE, py_spy_binary(), "record", "--pid", str(gateway.pid),
         "--duration", f"{duration_s:g}", "--rate", str(SAMPLE_RATE_HZ), "--format", fmt, "-o", str(output)],
        env=dict(os.environ), cwd=output.parent, log_path=log_path,
    )
    recorded = recorder.wait(duration_s + 60)
    result = finish_wrk(processes, load, load_s)
    if recorded != 0 or not output.exists():
        raise BenchError(f"py-spy failed ({recorded}):\n{log_path.read_text(errors='replace')}")
    if result.failures():
        raise BenchError(f"gateway failed under profiling: {', '.join(result.failures())}\n{gateway.log_tail()}")


def summarise_collapsed(text: str, top: int = 15) -> str:
    """Text summary of py-spy's raw output: one ``frame;frame;...;leaf COUNT`` line per stack."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_parse(frame) for frame in stack.split(";")]
        frames = [frame for frame in frames if frame is not None]
        if not frames:
            continue
        total += count
        self_time[_label(*frames[-1])] += count
        by_package[_package(frames[-1][1])] += count
        for label in {_label(*frame) for frame in frames}:
            inclusive[label] += count
    if total == 0:
        return "no samples (was the gateway busy?)\n"

    def block(title: str, counter: Counter[str], keep: int = top) -> list[str]:
        rows = [f"{title}"]
        rows += [f"  {count / total:6.1%}  {label}" for label, count in counter.most_common(keep)]
        return rows

    project = Counter({label: n for label, n in inclusive.items() if label.split(" ")[-1].startswith(("apps/", "edge_project/"))})
    lines = [f"{total} samples at {SAMPLE_RATE_HZ} Hz (on-CPU only; idle waits excluded)"]
    lines += block("on CPU, by library of the running function:", by_package, 12)
    lines += block("on CPU, by function (self):", self_time)
    lines += block("on the stack, gateway code (inclusive):", project)
    lines += block("on the stack, anything (inclusive):", inclusive, top + 10)
    return "\n".join(lines) + "\n"


def _parse(frame: str) -> tuple[str, str] | None:
    match = FRAME.match(frame.strip())
    if match is None:
        return None  # "process ..." or "thread ..." pseudo-frames
    return match.group("function"), _short_path(match.group("path"))


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if "/main/" in path:
        return path.split("/main/", 1)[1]
    return path


def _label(function: str, path: str) -> str:
    return f"{function} {path}"


def _package(path: str) -> str:
    if path.startswith(("apps/", "edge_project/")):
        return "gateway: " + "/".join(path.split("/")[:2])
    head = path.split("/", 1)[0]
    if head.endswith(".py") or head in {"asyncio", "concurrent", "json", "logging", "email", "http", "urllib"}:
        return "stdlib: " + head.removesuffix(".py")
    return head
