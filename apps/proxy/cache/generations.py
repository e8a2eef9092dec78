"""Generation counters: how a purge by tenant or by model is O(1).

Every cache key carries the generation of its namespace's tenants and of its model. A purge bumps
one counter (in Redis, shared by every process, and here), so every older entry stops being
reachable at once and ages out by its TTL; nothing is scanned or deleted. Each process keeps the
counters in memory (keys are computed without a Redis round trip) and learns of bumps from the
``edge:cache`` channel (apps.proxy.cache.purge).
"""

from __future__ import annotations

from collections.abc import Mapping


def tenant_field(tenant_id: int) -> str:
    return f"tenant:{tenant_id}"


def model_field(model: str) -> str:
    return f"model:{model}"


class Generations:
    def __init__(self) -> None:
        self._values: dict[str, int] = {}

    def of(self, field: str) -> int:
        return self._values.get(field, 0)

    def set(self, field: str, generation: int) -> bool:
        """Record a bump; False when it is not news (an echo of this process's own purge)."""
        if self._values.get(field) == generation:
            return False
        self._values[field] = generation
        return True

    def replace(self, values: Mapping[str, int]) -> bool:
        """Take Redis's counters as the truth (after (re)subscribing: bumps may have been missed)."""
        changed = values != self._values
        self._values = dict(values)
        return changed


generations = Generations()
