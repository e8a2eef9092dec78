#!/bin/sh
# Container entry point. Every role waits for the database first. The `migrate` role (run once per
# release, before the gateways start) applies migrations and the deploy checks, then exits; any
# other command (the image's default: uvicorn) is run as given.
set -eu
cd "$(dirname "$0")/.."

wait_for_database() {
    # Without the pool: plain connection attempts, no pool threads retrying in the background.
    DATABASE_POOL_MAX_SIZE=0 python - <<'PY'
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edge_project.settings.base")
django.setup()
from django.db import connection

deadline = time.monotonic() + float(os.environ.get("EDGE_DB_WAIT_S", "60"))
while True:
    try:
        connection.ensure_connection()
        break
    except Exception as exc:
        if time.monotonic() > deadline:
            sys.exit(f"database not reachable: {exc}")
        print(f"waiting for the database: {type(exc).__name__}", file=sys.stderr)
        time.sleep(1)
    finally:
        connection.close()
PY
}

wait_for_database

if [ "${1:-}" = "migrate" ]; then
    python manage.py migrate --noinput
    # Errors (a development SECRET_KEY, a malformed EDGE_ENCRYPTION_KEYS…) stop the release here;
    # warnings are printed for the operator and do not.
    exec python manage.py check --deploy --fail-level ERROR
fi

exec "$@"
