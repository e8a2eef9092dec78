"""Settings for the test suite: the machine's real Postgres and Redis unless the environment says otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
# Database 15, not 0: a gateway someone runs on this machine's Redis keeps its limits, budgets and cache.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Each run its own keys: deployment and tenant ids restart with each test database, so breaker states,
# budgets and cached answers of an earlier run would otherwise apply to this one's.
os.environ.setdefault("EDGE_REDIS_PREFIX", f"edge-test:{os.getpid()}:{os.urandom(4).hex()}:")

from edge_project.settings.base import *  # noqa: F403
from edge_project.settings.base import VAR_DIR

SECRET_KEY = "test-only-secret-key-not-for-production"
EDGE_ENCRYPTION_KEYS = ["b3b9eG2KqzQ5c0m7m5u2N3xJ8V6yXk0lQ1yVvG4t9Zs="]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
EDGE_LEDGER_SPOOL_DIR = VAR_DIR / "test-spool" / str(os.getpid())
EDGE_LEDGER_FLUSH_INTERVAL_S = 0.05
# pytest-django renames the database to test_<name> after connecting; a pool opened before that
# keeps pointing at the original database. The gateway processes under test keep their pool.
DATABASES["default"]["OPTIONS"].pop("pool", None)  # noqa: F405
