"""A real Celery worker process (`celery -A edge_project worker`) on the test database and this run's
Redis broker (REDIS_URL, under the run's EDGE_REDIS_PREFIX), and a local HTTP server that records
the webhooks it is sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.conf import settings

from tests.harness.gateway import ROOT, test_database_url
from tests.harness.waiting import wait_until


class CeleryWorker:
    def __init__(self, *, log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "edge_project.settings.base",
            "DATABASE_URL": test_database_url(),
            "DATABASE_POOL_MAX_SIZE": "0",
            "REDIS_URL": str(settings.REDIS_URL),
            "EDGE_REDIS_PREFIX": settings.EDGE_REDIS_PREFIX,  # the run's own broker keys
            "SECRET_KEY": settings.SECRET_KEY,
            "EDGE_ENCRYPTION_KEYS": ",".join(settings.EDGE_ENCRYPTION_KEYS),
            "DEBUG": "false",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CeleryWorker:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "edge_project", "worker", "--pool", "solo", "--loglevel",
                 "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_until(self.ready, timeout_s=30, what=f"the Celery worker to start:\n{self.log()}")
        return self

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited with {self.process.returncode}:\n{self.log()}")
        return " ready." in self.log()

    def __exit__(self, *exc: Any) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:] if self.log_path.exists() else ""


@dataclass(frozen=True)
class Hook:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """Answers every POST with ``status`` (200 unless a test says otherwise) and keeps what came."""

    def __init__(self) -> None:
        self.received: list[Hook] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(Hook({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/budget"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
