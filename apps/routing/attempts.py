"""Step 6's loop: try a route's deployments in strategy order until one answers.

An attempt that fails with a retryable ``ProviderError`` moves on to the next deployment (the
same one again, after a backoff, when it is the only one); anything else ends the loop at once.
Every attempt is written down, so responses and the ledger can say where a request went.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from apps.providers.adapters.base import ProviderAdapter
from apps.providers.errors import ProviderError
from apps.providers.registry import adapter_for
from apps.routing.strategies import order_targets
from apps.routing.table import ModelRoute, Target

T = TypeVar("T")
BACKOFF_START_S = 0.1
BACKOFF_CAP_S = 10.0


@dataclass(frozen=True, slots=True)
class Attempt:
    target: Target
    outcome: str  # "ok" or the error code
    duration_ms: float  # unrounded: the gateway's overhead is this subtracted from the request's time


async def attempt_in_order(
    route: ModelRoute,
    call: Callable[[ProviderAdapter, Target], Awaitable[T]],
    attempts: list[Attempt],
) -> tuple[Target, T]:
    targets = order_targets(route)
    for number in range(route.max_retries + 1):
        target = targets[number % len(targets)]
        if number >= len(targets):
            await asyncio.sleep(_backoff(number - len(targets)))
        started = time.perf_counter()
        try:
            result = await call(adapter_for(target.upstream), target)
        except ProviderError as exc:
            attempts.append(Attempt(target, exc.code or exc.type, _elapsed_ms(started)))
            if not exc.retryable or number == route.max_retries:
                raise
            continue
        attempts.append(Attempt(target, "ok", _elapsed_ms(started)))
        return target, result
    raise AssertionError("unreachable: the last attempt returns or raises")


def _backoff(retry: int) -> float:
    # Full jitter: spreads retries of many clients so they do not hit a recovering provider together.
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_START_S * 2**retry))


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
