"""Typed readers for settings that come from the environment.

Every reader also accepts ``NAME_FILE``: the path of a file holding the value, so secrets can be
mounted (Docker/Kubernetes secrets) instead of passed in the environment, where they leak into
process listings and crash reports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


class EnvError(ValueError):
    """An environment variable is set but cannot be read as the type its setting needs."""


def env_raw(name: str) -> str | None:
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name)


def env_str(name: str, default: str) -> str:
    value = env_raw(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool) -> bool:
    value = env_raw(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise EnvError(f"{name}={value!r} is not a boolean (use true/false)")


def env_int(name: str, default: int) -> int:
    value = env_raw(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise EnvError(f"{name}={value!r} is not an integer") from None


def env_float(name: str, default: float) -> float:
    value = env_raw(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise EnvError(f"{name}={value!r} is not a number") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_raw(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def database_from_url(url: str, *, pool_max_size: int) -> dict[str, Any]:
    """Turn ``postgres://user:pass@host:port/name`` or ``sqlite:///path`` into Django's DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as in most twelve-factor tooling.
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path[1:]) or ":memory:"}
    if parts.scheme not in {"postgres", "postgresql"}:
        raise EnvError(f"DATABASE_URL scheme {parts.scheme!r} is not supported (use postgres:// or sqlite:///)")
    options: dict[str, Any] = dict(parse_qsl(parts.query))
    if pool_max_size > 0:
        # Django's psycopg pool; CONN_MAX_AGE must stay 0 with it. min_size 1 keeps a warm connection.
        options["pool"] = {"min_size": 1, "max_size": pool_max_size, "timeout": 10}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # Without health checks the first requests after a Postgres restart fail with a dead connection.
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }
