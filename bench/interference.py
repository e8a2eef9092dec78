"""Noticing other work on the benchmark's cores, so a disturbed run is repeated instead of reported.

The development machine is shared: tests, installs and other benchmarks may run on the same two
cores at any time. A run counts as disturbed when the cores it uses were busy with something other
than the benchmark's own processes (or the hypervisor stole time from them) for more than
MAX_FOREIGN_SHARE of its wall time. "Own" CPU comes from /proc/<pid>/stat of the servers and from
os.times() for wrk (a reaped child); "busy" from the per-core lines of /proc/stat.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from servers import CLOCK_TICKS_PER_S

OwnCpu = dict[int, Callable[[], float]]  # core -> our processes' CPU seconds on it so far
MAX_FOREIGN_SHARE = 0.05  # of a core, over a run's wall time
QUIET_PROBE_S = 1.0


@dataclass(frozen=True)
class CoreTimes:
    busy_s: float  # user + nice + system + irq + softirq
    steal_s: float  # taken by the hypervisor for other guests


def core_times() -> dict[int, CoreTimes]:
    cores = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in values[:8])
        cores[int(name[3:])] = CoreTimes(
            busy_s=(user + nice + system + irq + softirq) / CLOCK_TICKS_PER_S, steal_s=steal / CLOCK_TICKS_PER_S
        )
    return cores


def reaped_children_cpu_s() -> float:
    times = os.times()
    return times.children_user + times.children_system


@dataclass(frozen=True)
class Foreign:
    """Per core: the share of wall time it spent on work that was not the benchmark's."""

    shares: dict[int, float]

    def disturbed(self) -> bool:
        return any(share > MAX_FOREIGN_SHARE for share in self.shares.values())

    def __str__(self) -> str:
        return " ".join(f"core{core} {share:.0%}" for core, share in sorted(self.shares.items()))


class Watch:
    """Brackets a run: ``own`` maps each core to a function giving our CPU seconds on it so far."""

    def __init__(self, own: OwnCpu) -> None:
        self.own = own
        self._start = self._sample()

    def _sample(self) -> tuple[float, dict[int, CoreTimes], dict[int, float]]:
        return time.monotonic(), core_times(), {core: read() for core, read in self.own.items()}

    def stop(self) -> Foreign:
        (wall0, cores0, own0), (wall1, cores1, own1) = self._start, self._sample()
        wall = wall1 - wall0
        shares = {}
        for core in self.own:
            busy = cores1[core].busy_s - cores0[core].busy_s
            steal = cores1[core].steal_s - cores0[core].steal_s
            shares[core] = max(0.0, busy - (own1[core] - own0[core]) + steal) / wall
        return Foreign(shares)


def wait_until_quiet(own: OwnCpu, *, max_wait_s: float, report: Callable[[str], None]) -> None:
    """Wait (up to max_wait_s) for a second in which our cores did nothing but our idle processes."""
    deadline = time.monotonic() + max_wait_s
    complained = False
    while True:
        watch = Watch(own)
        time.sleep(QUIET_PROBE_S)
        foreign = watch.stop()
        if not foreign.disturbed():
            return
        if time.monotonic() > deadline:
            report(f"  cores still busy with other work ({foreign}); measuring anyway")
            return
        if not complained:
            report(f"  waiting for other work on the cores to stop ({foreign})")
            complained = True


def own_cpu_by_core(cores: Sequence[tuple[int, Callable[[], float]]]) -> OwnCpu:
    """Sum several CPU-time readers per core: [(0, fake.cpu), (0, wrk), (1, gateway.cpu)...]."""
    by_core: dict[int, list[Callable[[], float]]] = {}
    for core, read in cores:
        by_core.setdefault(core, []).append(read)
    return {core: _summed(reads) for core, reads in by_core.items()}


def _summed(reads: list[Callable[[], float]]) -> Callable[[], float]:
    return lambda: sum(read() for read in reads)
