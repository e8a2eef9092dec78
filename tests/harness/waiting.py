"""Waiting for what other threads and processes do, without sleeping longer than needed."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], *, timeout_s: float = 10.0, what: str = "condition") -> float:
    """Poll ``condition`` until it holds; returns the seconds it took, or fails after ``timeout_s``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what} not met within {timeout_s}s")
        time.sleep(0.01)
    return time.monotonic() - started
