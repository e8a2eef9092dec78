"""Admission's settings are checked at start: a lease or a rebuild timeout of zero would break it quietly."""

from __future__ import annotations

from typing import Any

import pytest

from apps.proxy.checks import check_admission_settings


@pytest.mark.parametrize(("setting", "value", "check_id"), [
    ("EDGE_LEASE_S", 0, "edge.E080"),
    ("EDGE_BUDGET_REBUILD_TIMEOUT_S", -1, "edge.E081"),
])
def test_it_catches_a_misconfigured_admission_at_start(settings: Any, setting: str, value: object, check_id: str):
    assert check_admission_settings() == []
    setattr(settings, setting, value)

    assert [message.id for message in check_admission_settings()] == [check_id]
