"""System checks: misconfiguration found at start-up (and by `manage.py check --deploy`), not at the first request."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from apps.billing.spool import MAX_BACKOFF_S
from edge_project.settings.base import DEV_SECRET_KEY

MIN_HEALTH_TOKEN_LENGTH = 24


@register(Tags.security)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not settings.EDGE_ENCRYPTION_KEYS:
        messages.append(Warning(
            "EDGE_ENCRYPTION_KEYS is not set; provider API keys are encrypted with a key derived from SECRET_KEY.",
            hint="Generate one with: python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
            id="edge.W001",
        ))
    for index, key in enumerate(settings.EDGE_ENCRYPTION_KEYS):
        try:
            Fernet(key)
        except ValueError:
            messages.append(Error(
                f"EDGE_ENCRYPTION_KEYS entry {index + 1} is not a valid Fernet key (32 url-safe base64 bytes).",
                id="edge.E001",
            ))
    return messages


@register(Tags.security)
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.SECRET_KEY == DEV_SECRET_KEY and not settings.DEBUG:
        return [Error("SECRET_KEY is the built-in development key while DEBUG is off.",
                      hint="Set SECRET_KEY (or SECRET_KEY_FILE) in the environment.", id="edge.E002")]
    return []


@register()
def check_limits(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for name in ("EDGE_MAX_BODY_BYTES", "EDGE_MAX_UPSTREAM_BODY_BYTES", "EDGE_UPSTREAM_MAX_CONNECTIONS"):
        if getattr(settings, name) <= 0:
            messages.append(Error(f"{name} must be a positive integer.", id="edge.E003"))
    if settings.EDGE_KEY_CACHE_TTL_S < 0 or settings.EDGE_CONFIG_TTL_S < 0:
        messages.append(Error("EDGE_KEY_CACHE_TTL_S and EDGE_CONFIG_TTL_S must not be negative.", id="edge.E004"))
    if settings.EDGE_ROUTING_SYNC_S <= 0:
        messages.append(Error("EDGE_ROUTING_SYNC_S must be a positive number of seconds.", id="edge.E005"))
    return messages


@register()
def check_cache_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for name in ("EDGE_CACHE_L1_MAX_BYTES", "EDGE_CACHE_MAX_ENTRY_BYTES"):
        if getattr(settings, name) < 0:
            messages.append(Error(f"{name} must not be negative.", id="edge.E050"))
    if settings.EDGE_CACHE_FLIGHT_WAIT_S <= 0:
        messages.append(Error("EDGE_CACHE_FLIGHT_WAIT_S must be positive.", id="edge.E051"))
    if settings.EDGE_CACHE_STREAM_FLIGHT_WAIT_S < 0:
        messages.append(Error("EDGE_CACHE_STREAM_FLIGHT_WAIT_S must not be negative.", id="edge.E053"))
    if not settings.EDGE_REDIS_PREFIX.endswith(":"):
        messages.append(Error("EDGE_REDIS_PREFIX must end with ':'.", hint="e.g. edge:", id="edge.E052"))
    return messages


@register()
def check_idempotency_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if settings.EDGE_IDEMPOTENCY_TTL_S <= 0:
        messages.append(Error("EDGE_IDEMPOTENCY_TTL_S must be a positive number of seconds.", id="edge.E090"))
    for name in ("EDGE_IDEMPOTENCY_MAX_BYTES", "EDGE_IDEMPOTENCY_LOCAL_MAX_BYTES"):
        if getattr(settings, name) <= 0:
            messages.append(Error(f"{name} must be a positive number of bytes.", id="edge.E091"))
    return messages


@register()
def check_ledger_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if settings.EDGE_LEDGER_SPOOL_MAX_BYTES <= 0:
        messages.append(Error("EDGE_LEDGER_SPOOL_MAX_BYTES must be a positive number of bytes.", id="edge.E060"))
    if settings.EDGE_LEDGER_FLUSH_INTERVAL_S <= 0:
        messages.append(Error("EDGE_LEDGER_FLUSH_INTERVAL_S must be a positive number of seconds.", id="edge.E061"))
    if settings.EDGE_LEDGER_STUCK_AFTER_S <= 0:
        messages.append(Error("EDGE_LEDGER_STUCK_AFTER_S must be a positive number of seconds.", id="edge.E062"))
    elif settings.EDGE_LEDGER_STUCK_AFTER_S < MAX_BACKOFF_S + settings.EDGE_LEDGER_FLUSH_INTERVAL_S:
        messages.append(Warning(
            f"EDGE_LEDGER_STUCK_AFTER_S is shorter than the spool's longest retry wait ({MAX_BACKOFF_S:g} s) plus "
            "EDGE_LEDGER_FLUSH_INTERVAL_S: a database blip that the spool rides out reports /health as degraded.",
            id="edge.W060",
        ))
    return messages


@register()
def check_degradation_and_exposure(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Bounds on the database's part in a request, the failed-authentication throttle, trusted proxies."""
    messages: list[CheckMessage] = []
    if settings.EDGE_DB_TIMEOUT_S <= 0:
        messages.append(Error("EDGE_DB_TIMEOUT_S must be a positive number of seconds.", id="edge.E070"))
    if settings.EDGE_KEY_STALE_S < 0:
        messages.append(Error("EDGE_KEY_STALE_S must not be negative (0: no stale keys).", id="edge.E071"))
    for entry in settings.EDGE_TRUSTED_PROXIES:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            messages.append(Error(f"EDGE_TRUSTED_PROXIES entry {entry!r} is not an IP address or network.",
                                  hint="e.g. 10.0.0.0/8,192.0.2.7", id="edge.E072"))
    if settings.EDGE_AUTH_FAILURES_MAX < 0 or settings.EDGE_AUTH_FAILURES_WINDOW_S <= 0:
        messages.append(Error("EDGE_AUTH_FAILURES_MAX must not be negative (0: no throttle) and "
                              "EDGE_AUTH_FAILURES_WINDOW_S must be positive.", id="edge.E073"))
    if settings.EDGE_HEALTH_TOKEN and len(settings.EDGE_HEALTH_TOKEN) < MIN_HEALTH_TOKEN_LENGTH:
        messages.append(Warning(
            f"EDGE_HEALTH_TOKEN is shorter than {MIN_HEALTH_TOKEN_LENGTH} characters: it may be guessed.",
            hint="Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'", id="edge.W070",
        ))
    return messages


@register()
def check_admission_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if settings.EDGE_LEASE_S <= 0:
        messages.append(Error("EDGE_LEASE_S must be a positive number of seconds.", id="edge.E080"))
    if settings.EDGE_BUDGET_REBUILD_TIMEOUT_S <= 0:
        messages.append(Error("EDGE_BUDGET_REBUILD_TIMEOUT_S must be a positive number of seconds.", id="edge.E081"))
    return messages


# --- Cost reports (edge.E120–E129) ---
@register()
def check_report_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not settings.EDGE_INVOICE_ISSUER_NAME.strip():
        return [Error("EDGE_INVOICE_ISSUER_NAME must not be blank: FOCUS exports name who bills the tenants.",
                      hint="e.g. EDGE_INVOICE_ISSUER_NAME='Example Corp platform team'", id="edge.E120")]
    return []


@register()
def check_stored_responses(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if settings.EDGE_RESPONSES_RETENTION_S <= 0:
        messages.append(Error("EDGE_RESPONSES_RETENTION_S must be a positive number of seconds.", id="edge.E160"))
    if settings.EDGE_RESPONSES_LOCAL_MAX_BYTES <= 0:
        messages.append(Error("EDGE_RESPONSES_LOCAL_MAX_BYTES must be a positive number of bytes.", id="edge.E161"))
    return messages


@register()
def check_metrics_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Who may read /metrics, and where each instance counts (apps.proxy.metrics, edge_project.metrics_dir)."""
    messages: list[CheckMessage] = []
    for entry in settings.EDGE_METRICS_ALLOWED_NETWORKS:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            messages.append(Error(f"EDGE_METRICS_ALLOWED_NETWORKS entry {entry!r} is not an IP address or network.",
                                  hint="e.g. 127.0.0.0/8,10.0.0.0/8; 'none' for the token only", id="edge.E140"))
    directory = settings.EDGE_METRICS_DIR
    if directory.exists() and not (directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)):
        messages.append(Error(f"EDGE_METRICS_DIR {str(directory)!r} is not a directory this process may write.",
                              hint="Each gateway instance keeps its metrics files in a directory under it.",
                              id="edge.E141"))
    if settings.EDGE_METRICS_TOKEN and len(settings.EDGE_METRICS_TOKEN) < MIN_HEALTH_TOKEN_LENGTH:
        messages.append(Warning(
            f"EDGE_METRICS_TOKEN is shorter than {MIN_HEALTH_TOKEN_LENGTH} characters: it may be guessed.",
            hint="Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'", id="edge.W140",
        ))
    return messages


@register()
def check_log_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.EDGE_LOG_FORMAT not in ("json", "text"):
        return [Error(f"EDGE_LOG_FORMAT={settings.EDGE_LOG_FORMAT!r} is not a log format.",
                      hint="Use json (one object per line, for log shippers) or text (for reading).", id="edge.E150")]
    return []
