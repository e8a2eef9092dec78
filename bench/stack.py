"""The processes and database a benchmark run sets up: fake upstream, gateway, floor.

Core 0 takes the fake upstream (and wrk, see loadgen.py); core 1 takes the servers under test.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_db import UPSTREAM_MODEL
from servers import BenchError, Processes, Server, free_port

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))
FLOOR_DIR = REPO.parent / "shared" / "bench"  # ../shared/bench from the repo root
SERVER_CORE = "1"
UPSTREAM_CORE = "0"
UVICORN_FLAGS = ["--host", "127.0.0.1", "--no-access-log", "--loop", "uvloop", "--http", "httptools",
                 "--no-proxy-headers"]  # as README.md runs it


def start_fake_upstream(processes: Processes) -> Server:
    port = free_port()
    return processes.start_server(
        "fake-upstream",
        ["taskset", "-c", UPSTREAM_CORE, PYTHON, "-m", "apps.providers.fake_upstream", "--port", str(port)],
        env=dict(os.environ), cwd=REPO, port=port, ready_path="/v1/models",
    )


def gateway_environment(workdir: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "edge_project.settings.base",
        "DATABASE_URL": database_url,
        "REDIS_URL": "",  # the embedded, in-process backends: what `make run` serves
        "SECRET_KEY": f"bench-{secrets.token_hex(16)}",
        "EDGE_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),  # a fresh Fernet key
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EDGE_VAR_DIR": str(workdir / "var"),
        "EDGE_LEDGER_SPOOL_DIR": str(workdir / "spool"),
        "EDGE_HEALTH_TOKEN": secrets.token_urlsafe(32),  # check_ledger reads /health's detail with it
    }


def prepare_database(env: dict[str, str], *, upstream_url: str, limited: bool = True) -> str:
    """Migrate, configure the fake as the provider of bench-model, and return a new API key (with limits
    and a budget unless ``limited`` is false)."""
    run_python([str(REPO / "manage.py"), "migrate", "--noinput", "-v", "0"], env)
    extra = [] if limited else ["unlimited"]
    output = run_python([str(REPO / "bench" / "edge_db.py"), "configure", upstream_url, *extra], env)
    return str(json.loads(output.strip().splitlines()[-1])["key"])


def run_python(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([PYTHON, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"`python {' '.join(argv)}` failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def start_gateway(processes: Processes, env: dict[str, str]) -> Server:
    port = free_port()
    return processes.start_server(
        "gateway",
        ["taskset", "-c", SERVER_CORE, PYTHON, "-m", "uvicorn", "edge_project.asgi:application",
         *UVICORN_FLAGS, "--port", str(port)],
        env=env, cwd=REPO, port=port, ready_path="/health/live",
    )


def start_floor(processes: Processes, *, upstream_url: str) -> Server | None:
    if not (FLOOR_DIR / "floor_app.py").exists():
        print(f"floor: {FLOOR_DIR / 'floor_app.py'} not found; skipping the floor (no gateway/floor ratios)",
              file=sys.stderr)
        return None
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    env |= {"FLOOR_UPSTREAM": upstream_url, "FLOOR_KEY": "sk-floor", "FLOOR_UPSTREAM_MODEL": UPSTREAM_MODEL,
            "PYTHONPATH": str(FLOOR_DIR)}
    return processes.start_server(
        "floor",
        ["taskset", "-c", SERVER_CORE, PYTHON, "-m", "uvicorn", "floor_app:application",
         *UVICORN_FLAGS, "--lifespan", "off", "--port", str(port)],
        env=env, cwd=REPO, port=port, ready_path="/health",
    )


@contextmanager
def gateway_database(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    if not args.postgres:
        yield f"sqlite:///{workdir / 'edge.sqlite3'}"  # an absolute path: sqlite:////tmp/...
        return
    import psycopg
    from psycopg import sql

    url = args.postgres
    name = sql.Identifier(url.rsplit("/", 1)[1].split("?")[0])

    def maintenance(statement: sql.Composed) -> None:
        with psycopg.connect(url, dbname="postgres", autocommit=True) as connection:
            connection.execute(statement)

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name)
    try:
        maintenance(drop)
        maintenance(sql.SQL("CREATE DATABASE {}").format(name))
    except psycopg.Error as exc:
        raise BenchError(f"cannot create the benchmark database at {url}: {exc}") from exc
    try:
        yield url
    finally:
        maintenance(drop)
