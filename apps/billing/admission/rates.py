"""Per-minute limits as GCRA in integer arithmetic: the one definition both backends follow.

GCRA (a leaky bucket kept as one number) with a burst of the whole per-minute limit: a subject may
spend its limit at once, then as fast as it refills, continuously, so no window boundary ever
admits a second burst, and the moment a refused demand fits is known exactly.

A bucket's ``level`` counts units in flight scaled by WINDOW_MS, and drains by ``limit`` per
millisecond; it holds ``capacity(limit) = WINDOW_MS × limit``. One unit (a request for rpm, a token
for tpm) costs ``unit(divisor) = WINDOW_MS × divisor``: divisor 1 normally, the number of gateway
processes when each enforces its share while Redis is unreachable (so N processes admit the limit
between them, and a share smaller than one demand still admits that demand into an empty bucket).
Every figure is an integer below 2^53, so admit.lua, where numbers are doubles, computes exactly
what this module does.
"""

from __future__ import annotations

WINDOW_MS = 60_000
MAX_LEVEL = 2**52  # what charges beyond a reservation may pile up to (admit.lua and settle.lua alike)


def capacity(limit: int) -> int:
    return WINDOW_MS * limit


def unit(divisor: int) -> int:
    return WINDOW_MS * divisor


def drained(level: int, since_ms: int, now_ms: int, limit: int) -> int:
    """The level at ``now_ms`` of a bucket left at ``level`` at ``since_ms`` (a clock going back drains nothing)."""
    elapsed = now_ms - since_ms
    if elapsed <= 0:
        return level
    return max(0, level - elapsed * limit)


def fits(level: int, cost: int, limit: int) -> bool:
    """A demand fits when the bucket has room for it, or is empty (see the module docstring)."""
    return level == 0 or level + cost <= WINDOW_MS * limit


def retry_ms(level: int, cost: int, limit: int) -> int:
    """The milliseconds until ``fits(level', cost, limit)`` holds, if nothing else is admitted."""
    room_needed = level - max(0, WINDOW_MS * limit - cost)
    return max(0, -(-room_needed // limit))


def remaining(level: int, limit: int, divisor: int) -> int:
    """Whole units that would be admitted now."""
    return max(0, WINDOW_MS * limit - level) // (WINDOW_MS * divisor)


def reset_ms(level: int, limit: int) -> int:
    """The milliseconds until the bucket is empty, i.e. the whole limit is available again."""
    return -(-level // limit)


def refund(excess: int, level_after: int, admitted_ms: int, now_ms: int, limit: int) -> int:
    """How much of a reservation's unused ``excess`` is still in the bucket and may be given back.

    The bucket drains its oldest contents first, so of what this admission added (its top was
    ``level_after`` at ``admitted_ms``) at most ``level_after − elapsed × limit`` is left: a late
    refund never returns capacity the bucket already gave back by draining.
    """
    left = level_after - max(0, now_ms - admitted_ms) * limit
    return max(0, min(excess, left))
