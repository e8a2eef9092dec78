"""A real gateway process (uvicorn, production settings) for end-to-end tests.

It talks to the test database that pytest-django created, so rows the tests commit are what it
serves, and rows it writes are what the tests read.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
HEALTH_TOKEN = "test-operator-token-0123456789abcdef"  # EDGE_HEALTH_TOKEN of every test gateway


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_database_url(*, port: int | None = None) -> str:
    """The URL of the database pytest-django created for this session (test_<name>); ``port``: reached
    through something listening there instead (tests/harness/tcp_proxy.py), on loopback."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    if port is not None:
        return f"postgres://{credentials}@127.0.0.1:{port}/{db['NAME']}"
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def database_address() -> tuple[str, int]:
    """Host and port of the test database's server."""
    db = connection.settings_dict
    return db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)


class GatewayProcess:
    def __init__(self, *, spool_dir: Path, log_path: Path, env: dict[str, str] | None = None, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.spool_dir = spool_dir
        self.log_path = log_path
        self.workers = workers
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "edge_project.settings.base",
            "DATABASE_URL": test_database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "EDGE_ENCRYPTION_KEYS": ",".join(settings.EDGE_ENCRYPTION_KEYS),
            "EDGE_LEDGER_SPOOL_DIR": str(spool_dir),
            "EDGE_LEDGER_FLUSH_INTERVAL_S": "0.05",
            "EDGE_CONFIG_TTL_S": "0.1",  # tests change config and wait (briefly) for the gateway to see it
            "EDGE_KEY_CACHE_TTL_S": "0.5",
            "EDGE_HEALTH_TOKEN": HEALTH_TOKEN,
            # Every test client is 127.0.0.1: the failed-authentication throttle would count the whole
            # suite's bad keys as one client's. Its own tests start gateways with it on.
            "EDGE_AUTH_FAILURES_MAX": "0",
            "DEBUG": "false",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        self.launch()
        self._wait_until_live()
        return self

    def launch(self) -> None:
        """Start the server without waiting for it to answer (tests of what it does before any request)."""
        # Its own process group, so kill() reaches every worker, not just uvicorn's supervisor. The
        # child keeps its own copy of the log's descriptor.
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def command(self) -> list[str]:
        """The server's command line: uvicorn as in production; subclasses run the other ASGI servers."""
        return [
            sys.executable, "-m", "uvicorn", "edge_project.asgi:application",
            "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log",
            "--loop", "uvloop", "--http", "httptools", "--workers", str(self.workers),
            # As README.md says to run it: the gateway alone decides whose X-Forwarded-For to believe.
            "--no-proxy-headers",
            "--timeout-graceful-shutdown", "10",
        ]

    def _wait_until_live(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not start in {START_TIMEOUT_S}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        """Send ``sig`` and wait for the process to exit; returns its exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL the whole process and its workers: no shutdown code runs."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def health_detail(self) -> dict[str, Any]:
        """``/health`` as an operator reads it (with the health token): the checks, per dependency."""
        response = httpx.get(f"{self.url}/health", headers={"Authorization": f"Bearer {HEALTH_TOKEN}"}, timeout=10)
        checks: dict[str, Any] = response.json()["checks"]
        return checks

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
