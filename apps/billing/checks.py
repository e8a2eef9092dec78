"""System checks of the background work's settings: budget alerts, retention, rollup verification (edge.E130-E139)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register


@register()
def check_background_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for value in settings.EDGE_BUDGET_ALERT_THRESHOLDS:
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            messages.append(Error(f"EDGE_BUDGET_ALERT_THRESHOLDS entry {value!r} is not a percentage from 1 to 1000.",
                                  hint="e.g. 50,80,100", id="edge.E130"))
    url = settings.EDGE_BUDGET_ALERT_WEBHOOK_URL
    if url and (urlsplit(url).scheme not in {"http", "https"} or not urlsplit(url).netloc):
        messages.append(Error(f"EDGE_BUDGET_ALERT_WEBHOOK_URL {url!r} is not an http(s) URL.", id="edge.E131"))
    if settings.EDGE_BUDGET_ALERT_TIMEOUT_S <= 0:
        messages.append(Error("EDGE_BUDGET_ALERT_TIMEOUT_S must be a positive number of seconds.", id="edge.E132"))
    if settings.EDGE_BUDGET_ALERT_ATTEMPTS < 1:
        messages.append(Error("EDGE_BUDGET_ALERT_ATTEMPTS must be at least 1.", id="edge.E133"))
    if settings.EDGE_RETENTION_MONTHS < 0:
        messages.append(Error("EDGE_RETENTION_MONTHS must not be negative (0: keep every month).", id="edge.E134"))
    if settings.EDGE_ROLLUP_VERIFY_WINDOW_S < 3600:
        messages.append(Error("EDGE_ROLLUP_VERIFY_WINDOW_S must be at least 3600 (rollups are hourly).",
                              id="edge.E135"))
    if url and not settings.EDGE_BUDGET_ALERT_WEBHOOK_SECRET:
        messages.append(Warning(
            "EDGE_BUDGET_ALERT_WEBHOOK_URL is set without EDGE_BUDGET_ALERT_WEBHOOK_SECRET: alerts go unsigned.",
            hint="Set a secret and check X-Edge-Signature in the receiver.", id="edge.W130",
        ))
    return messages
