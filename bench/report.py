"""Medians over repeats, and the tables bench/run.py prints."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from interference import MAX_FOREIGN_SHARE, Foreign
from loadgen import Scenario, WrkResult

FLOOR_RATIO_TARGET = 0.8  # the gateway's req/s must be at least this share of the floor's
RSS_TARGET_MIB = 150.0  # per gateway worker


@dataclass(frozen=True)
class Run:
    """One measured load of one target in one scenario."""

    target: str
    scenario: Scenario
    wrk: WrkResult
    cpu_ms_per_request: float
    sys_ms_per_request: float  # of which in the kernel
    off_loop_ms_per_request: float  # of which outside the main (event loop) thread
    rss_mib: float
    foreign: Foreign  # other work on the cores during the run
    attempts: int  # 1 unless earlier attempts were disturbed


@dataclass(frozen=True)
class Summary:
    """The median of each figure over a target's repeats of one scenario."""

    target: str
    scenario: Scenario
    rps: float
    rps_min: float
    rps_max: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    sys_ms_per_request: float
    off_loop_ms_per_request: float
    rss_mib: float  # after the last repeat
    foreign_max: float  # the most any core spent on other work in any kept repeat
    retried: int  # repeats measured again because other work disturbed them

    @property
    def core_share(self) -> float:
        """How busy the server's core was: near 100% means the server, not the load, set the pace."""
        return self.rps * self.cpu_ms_per_request / 1000


def summarise(runs: Sequence[Run]) -> Summary:
    rps = [run.wrk.rps for run in runs]
    return Summary(
        target=runs[0].target,
        scenario=runs[0].scenario,
        rps=statistics.median(rps),
        rps_min=min(rps),
        rps_max=max(rps),
        p50_ms=statistics.median(run.wrk.p50_ms for run in runs),
        p99_ms=statistics.median(run.wrk.p99_ms for run in runs),
        cpu_ms_per_request=statistics.median(run.cpu_ms_per_request for run in runs),
        sys_ms_per_request=statistics.median(run.sys_ms_per_request for run in runs),
        off_loop_ms_per_request=statistics.median(run.off_loop_ms_per_request for run in runs),
        rss_mib=runs[-1].rss_mib,
        foreign_max=max(max(run.foreign.shares.values(), default=0.0) for run in runs),
        retried=sum(run.attempts - 1 for run in runs),
    )


def _noise(summary: Summary) -> str:
    """Other work seen on the cores; "!" when it was over the limit even after retries."""
    mark = "!" if summary.foreign_max > MAX_FOREIGN_SHARE else ""
    retried = f" ({summary.retried} redone)" if summary.retried else ""
    return f"{summary.foreign_max:.0%}{mark}{retried}"


def nearest_rank(values: Sequence[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def results_table(summaries: Sequence[Summary]) -> str:
    header = ("scenario", "target", "req/s", "min..max", "p50 ms", "p99 ms", "CPU ms/req", "sys", "off-loop",
              "core", "RSS MiB", "noise")
    rows = [
        (
            s.scenario.name, s.target, f"{s.rps:.0f}", f"{s.rps_min:.0f}..{s.rps_max:.0f}",
            f"{s.p50_ms:.2f}", f"{s.p99_ms:.2f}", f"{s.cpu_ms_per_request:.2f}", f"{s.sys_ms_per_request:.2f}",
            f"{s.off_loop_ms_per_request:.2f}",
            f"{s.core_share:.0%}", f"{s.rss_mib:.0f}", _noise(s),
        )
        for s in summaries
    ]
    return _table(header, rows)


def ratios_table(summaries: Sequence[Summary], scenarios: Sequence[Scenario]) -> tuple[str, bool]:
    """Gateway against floor and direct, per scenario; also whether every target was met."""
    by_key = {(s.target, s.scenario.name): s for s in summaries}
    header = ("scenario", "gateway/floor req/s", "target", "gw p50 - direct p50 ms", "gw p50 - floor p50 ms")
    rows, all_met = [], True
    for scenario in scenarios:
        gateway = by_key.get(("gateway", scenario.name))
        floor = by_key.get(("floor", scenario.name))
        direct = by_key.get(("direct", scenario.name))
        if gateway is None:
            continue
        ratio = gateway.rps / floor.rps if floor else None
        met = ratio is None or ratio >= FLOOR_RATIO_TARGET
        all_met = all_met and met
        rows.append((
            scenario.name,
            f"{ratio:.3f}x" if ratio is not None else "n/a (no floor)",
            ("ok" if met else "BELOW") + f" (>= {FLOOR_RATIO_TARGET}x)" if ratio is not None else "-",
            f"{gateway.p50_ms - direct.p50_ms:+.2f}" if direct else "n/a",
            f"{gateway.p50_ms - floor.p50_ms:+.2f}" if floor else "n/a",
        ))
    return _table(header, rows), all_met


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(cell).rjust(width) if index > 1 else str(cell).ljust(width)
                         for index, (cell, width) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), line(["-" * width for width in widths]), *(line(row) for row in rows)])
