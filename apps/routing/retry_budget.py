"""A retry budget: retries of the same deployment may add at most a fraction on top of first attempts.

Without one, an outage multiplies load: every client request turns into three upstream calls just
when the upstream can least take them. Counts are per process and per public model, over a sliding
window of ``WINDOW_S`` seconds in one-second buckets; a floor of ``MIN_RETRIES_PER_WINDOW`` keeps a
quiet gateway able to retry at all. Failing over to another deployment is not charged: it moves
load rather than adding it (breakers and ``max_retries`` bound it).
"""

from __future__ import annotations

import time
from collections import deque

WINDOW_S = 10
MIN_RETRIES_PER_WINDOW = 10


class _Window:
    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [second, first attempts, retries]

    def _bucket(self, now: int) -> list[int]:
        while self.buckets and self.buckets[0][0] <= now - WINDOW_S:
            self.buckets.popleft()
        if not self.buckets or self.buckets[-1][0] != now:
            self.buckets.append([now, 0, 0])
        return self.buckets[-1]

    def totals(self, now: int) -> tuple[int, int]:
        self._bucket(now)
        return sum(bucket[1] for bucket in self.buckets), sum(bucket[2] for bucket in self.buckets)


class RetryBudget:
    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    def _window(self, name: str) -> _Window:
        window = self._windows.get(name)
        if window is None:
            window = self._windows[name] = _Window()
        return window

    def record_request(self, name: str) -> None:
        self._window(name)._bucket(int(time.monotonic()))[1] += 1

    def try_spend(self, name: str, ratio: float) -> bool:
        """Take one retry from the budget, or say there is none left."""
        window, now = self._window(name), int(time.monotonic())
        firsts, retries = window.totals(now)
        if retries >= max(MIN_RETRIES_PER_WINDOW, ratio * firsts):
            return False
        window._bucket(now)[2] += 1
        return True
