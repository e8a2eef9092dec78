"""Misconfigured bounds, trusted proxies, throttle or health token are caught at start (system checks)."""

from __future__ import annotations

from typing import Any

import pytest

from apps.proxy.checks import check_degradation_and_exposure


@pytest.mark.parametrize(("setting", "value", "check_id"), [
    ("EDGE_DB_TIMEOUT_S", 0, "edge.E070"),
    ("EDGE_KEY_STALE_S", -1, "edge.E071"),
    ("EDGE_TRUSTED_PROXIES", ["10.0.0.0/8", "proxy.internal"], "edge.E072"),
    ("EDGE_TRUSTED_PROXIES", ["10.0.0.300"], "edge.E072"),
    ("EDGE_AUTH_FAILURES_MAX", -1, "edge.E073"),
    ("EDGE_AUTH_FAILURES_WINDOW_S", 0, "edge.E073"),
    ("EDGE_HEALTH_TOKEN", "short", "edge.W070"),
])
def test_a_misconfiguration_is_caught_at_start(settings: Any, setting: str, value: object, check_id: str):
    settings.EDGE_HEALTH_TOKEN = "a-token-long-enough-to-be-safe-0123"
    settings.EDGE_TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
    assert check_degradation_and_exposure() == []
    setattr(settings, setting, value)

    assert [message.id for message in check_degradation_and_exposure()] == [check_id]
