"""Counts kept in plain floats on the request path and written to prometheus_client's values in batches.

Under uvicorn every value is a float in a memory-mapped file, and each write takes a lock and asks the
kernel for the pid (to notice a fork): about 20 of them per request cost more than all the rest of
the metrics work. So a request adds to a ``Tally`` (one float addition) and ``flush()`` moves what
accumulated into the files: every second from the upkeep task, before each scrape in the process
answering it, and at shutdown. Everything runs on the event loop's thread, so nothing is counted
twice or lost between an addition and a flush. A process killed outright loses under a second of
counts; the ledger, not the metrics, is the record of money.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

_tallies: list[Tally | HistogramTally] = []


class Tally:
    """A counter's (or an only-growing gauge's) child, plus what was added since the last flush."""

    __slots__ = ("child", "pending")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.pending = 0.0
        _tallies.append(self)

    def add(self, amount: float = 1.0) -> None:
        self.pending += amount

    def flush(self) -> None:
        if self.pending:
            amount, self.pending = self.pending, 0.0
            self.child.inc(amount)


class HistogramTally:
    """A histogram's child, plus the observations since the last flush, already sorted into its buckets."""

    __slots__ = ("bounds", "child", "counts", "total")

    def __init__(self, child: Any) -> None:
        self.child = child
        # prometheus_client's own bucket bounds and values (pinned in requirements/base.txt): an observation
        # goes to the first bucket whose bound is at least its value, as Histogram.observe() does.
        self.bounds: list[float] = list(child._upper_bounds)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0
        _tallies.append(self)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def flush(self) -> None:
        if not any(self.counts):
            return
        counts, self.counts = self.counts, [0] * len(self.bounds)
        total, self.total = self.total, 0.0
        for bucket, count in zip(self.child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        self.child._sum.inc(total)


def flush() -> None:
    for tally in _tallies:
        tally.flush()
