"""Health per deployment: recent success rate, latency and time to first token, across processes.

Each process counts its own outcomes in decaying counters (half-life ``HALF_LIFE_S``), so "recent"
means about the last minute and a recovered provider's old failures fade by themselves. Latency and
TTFT are moving averages (EWMA). ``apps.routing.shared_state`` writes this process's counters to
Redis and reads the other processes' back; ``view()`` merges them, so least_latency, hybrid and
admin see the whole gateway. Without Redis the view is this process's own, which is the whole
gateway when there is one process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

HALF_LIFE_S = 60.0
EWMA_ALPHA = 0.2  # weight of the newest sample
STALE_AFTER_S = 300.0  # another process's counters this old are ignored (it probably died)


@dataclass(slots=True)
class Counters:
    """One process's view of one deployment. ``at`` is wall time: it is compared across processes."""

    successes: float = 0.0
    failures: float = 0.0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    at: float = 0.0

    def decayed(self, now: float) -> tuple[float, float]:
        factor = math.exp2(-(now - self.at) / HALF_LIFE_S) if self.at else 1.0
        return self.successes * factor, self.failures * factor

    def add(self, *, ok: bool, latency_ms: float | None, ttft_ms: float | None, now: float) -> None:
        self.successes, self.failures = self.decayed(now)
        self.at = now
        if ok:
            self.successes += 1
        else:
            self.failures += 1
        self.latency_ms = _ewma(self.latency_ms, latency_ms)
        self.ttft_ms = _ewma(self.ttft_ms, ttft_ms)

    def as_list(self) -> list[float | None]:
        return [self.successes, self.failures, self.latency_ms, self.ttft_ms, self.at]

    @classmethod
    def from_list(cls, values: list[float | None]) -> Counters:
        """Raises ValueError or TypeError for anything but five numbers (or nulls)."""
        successes, failures, latency, ttft, at = values
        return cls(float(successes or 0), float(failures or 0), _number_or_none(latency), _number_or_none(ttft),
                   float(at or 0))


def _number_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def _ewma(average: float | None, sample: float | None) -> float | None:
    if sample is None:
        return average
    return sample if average is None else average + EWMA_ALPHA * (sample - average)


@dataclass(frozen=True, slots=True)
class DeploymentHealth:
    calls: float  # recent calls, decayed
    success_rate: float | None  # None: no recent calls
    latency_ms: float | None
    ttft_ms: float | None


UNKNOWN = DeploymentHealth(calls=0.0, success_rate=None, latency_ms=None, ttft_ms=None)


def merge(counters: Iterable[Counters], now: float) -> DeploymentHealth:
    calls = successes = latency_weight = ttft_weight = 0.0
    latency_sum = ttft_sum = 0.0
    for one in counters:
        if one.at and now - one.at > STALE_AFTER_S:
            continue
        ok, failed = one.decayed(now)
        weight = max(ok + failed, 1e-6)
        calls, successes = calls + ok + failed, successes + ok
        if one.latency_ms is not None:
            latency_sum, latency_weight = latency_sum + one.latency_ms * weight, latency_weight + weight
        if one.ttft_ms is not None:
            ttft_sum, ttft_weight = ttft_sum + one.ttft_ms * weight, ttft_weight + weight
    return DeploymentHealth(
        calls=calls,
        success_rate=successes / calls if calls > 1e-9 else None,
        latency_ms=latency_sum / latency_weight if latency_weight else None,
        ttft_ms=ttft_sum / ttft_weight if ttft_weight else None,
    )


class HealthBook:
    """This process's counters, plus the other processes' as last read from Redis."""

    def __init__(self) -> None:
        self.local: dict[int, Counters] = {}
        self.remote: dict[int, list[Counters]] = {}
        self.unsent: set[int] = set()  # deployments whose local counters changed since the last write

    def record(self, deployment_id: int, *, ok: bool, latency_ms: float | None = None,
               ttft_ms: float | None = None) -> None:
        counters = self.local.get(deployment_id)
        if counters is None:
            counters = self.local[deployment_id] = Counters()
        counters.add(ok=ok, latency_ms=latency_ms, ttft_ms=ttft_ms, now=time.time())
        self.unsent.add(deployment_id)

    def view(self, deployment_id: int) -> DeploymentHealth:
        local = self.local.get(deployment_id)
        remote = self.remote.get(deployment_id, ())
        if local is None and not remote:
            return UNKNOWN
        return merge([*remote, *([local] if local else [])], time.time())

    def reset(self) -> None:
        self.local.clear()
        self.remote.clear()
        self.unsent.clear()
