"""System checks: misconfiguration found at start-up (and by `manage.py check --deploy`), not at the first request."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from edge_project.settings.base import DEV_SECRET_KEY


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
def check_admission_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if settings.EDGE_LEASE_S <= 0:
        messages.append(Error("EDGE_LEASE_S must be a positive number of seconds.", id="edge.E080"))
    if settings.EDGE_BUDGET_REBUILD_TIMEOUT_S <= 0:
        messages.append(Error("EDGE_BUDGET_REBUILD_TIMEOUT_S must be a positive number of seconds.", id="edge.E081"))
    return messages
