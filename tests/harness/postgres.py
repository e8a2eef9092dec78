"""Restarting the machine's Postgres cluster under a running gateway, and making sure it comes back."""

from __future__ import annotations

import subprocess
from pathlib import Path

from django.db import connection


def _cluster(action: str) -> subprocess.CompletedProcess[str]:
    version = sorted(path.name for path in Path("/etc/postgresql").iterdir())[-1]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def restart_postgres() -> None:
    """Restart the cluster; every connection open to it dies, the calling thread's included.

    Connections are per thread: whichever thread reads the database next must call
    ``django.db.connection.close()`` first.
    """
    result = _cluster("restart")
    assert result.returncode == 0, f"pg_ctlcluster restart failed: {result.stderr}"


def ensure_postgres_running() -> None:
    """Start the cluster if a failed test left it down (pg_ctlcluster status exits 3 when stopped)."""
    if _cluster("status").returncode != 0:
        _cluster("start")
    connection.close()
