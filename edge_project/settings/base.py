"""Settings for every environment; values come from the environment through ``edge_project.env``.

Nothing here talks to a database or network. Misconfiguration is reported by the system checks in
``apps/proxy/checks.py`` at start-up, not by exceptions at import time, except for values that cannot
even be parsed (a non-integer port, say).
"""

from __future__ import annotations

from pathlib import Path

from edge_project.env import (
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_raw,
    env_str,
)
from edge_project.schedule import beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("EDGE_VAR_DIR", str(BASE_DIR / "var")))  # local state: SQLite file, ledger spool

# Insecure default so `make run` works; checks.E002 refuses it when DEBUG is off.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)  # never on in production: it leaks settings in error pages
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])  # Host headers served
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])  # admin behind a TLS proxy needs its origin here

INSTALLED_APPS = [
    "daphne",  # first, so `runserver` is the ASGI dev server
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "apps.providers",
    "apps.routing",
    "apps.billing",
    "apps.proxy",
]

# Admin and other browser pages. API paths (API_PATH_PREFIXES) get API_MIDDLEWARE instead, from
# their own handler (edge_project.lifespan): sessions, CSRF and messages cost ~60% of a trivial
# async view's throughput and mean nothing to a bearer-key client.
MIDDLEWARE = [
    # django_http_* metrics of admin and browser pages in /metrics (the API path counts its own: apps.proxy.metrics).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
API_MIDDLEWARE: list[str] = []
API_PATH_PREFIXES = ("/v1/", "/health", "/metrics")  # served by the API handler, with API_MIDDLEWARE

ROOT_URLCONF = "edge_project.urls"
ASGI_APPLICATION = "edge_project.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if not env_raw("DATABASE_URL"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded SQLite default lives here; git keeps no var/
DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'edge.sqlite3'}"),
        # Per process; workers x this must stay under Postgres' max_connections.
        pool_max_size=env_int("DATABASE_POOL_MAX_SIZE", 4),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_raw("REDIS_URL") or None  # unset: in-process backends, no L2 cache
REDIS_TIMEOUT_S = env_float("REDIS_TIMEOUT_S", 0.2)  # bound on any one Redis command on the request path
REDIS_COOLDOWN_S = env_float("REDIS_COOLDOWN_S", 2.0)  # after a Redis failure, skip it this long before trying again
# Every Redis key and channel of this installation starts with it: two installations sharing one Redis
# (or a test run beside a gateway) never touch each other's state.
EDGE_REDIS_PREFIX = env_str("EDGE_REDIS_PREFIX", "edge:")
# What a request holds in Redis (concurrency slots, budget reservations, idempotency claims) expires
# this long after its process stops renewing it, e.g. because it died (edge_project.leases).
EDGE_LEASE_S = env_float("EDGE_LEASE_S", 30.0)

CACHES = {
    "default": (
        {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT_S,
                "SOCKET_TIMEOUT": REDIS_TIMEOUT_S,
                # A sick Redis degrades the gateway to in-process state instead of failing requests.
                "IGNORE_EXCEPTIONS": True,
            },
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False  # no translations; saves a per-request locale activation
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    # The /v1/ views do their own key authentication (apps.proxy.auth); DRF's session and basic
    # authenticators would otherwise run per request and answer in DRF's shape.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "apps.proxy.errors.drf_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")  # root level for the gateway's logs
# --- Logs, redaction (apps.proxy.logging, apps.proxy.request_log, edge_project.redaction) ---------------
EDGE_LOG_FORMAT = env_str("EDGE_LOG_FORMAT", "json")  # json (one object per line, for shippers) or text (`make run`)
EDGE_LOG_REQUESTS = env_bool("EDGE_LOG_REQUESTS", True)  # one line per API request (logger edge.requests)
EDGE_REDACT_IP_ADDRESSES = env_bool("EDGE_REDACT_IP_ADDRESSES", False)  # IPv4/IPv6 addresses count as personal data
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "apps.proxy.logging.JsonFormatter"},
        "text": {"()": "apps.proxy.logging.TextFormatter"},
    },
    # An unknown EDGE_LOG_FORMAT is edge.E150; until the check stops the process, lines are JSON.
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "formatter": EDGE_LOG_FORMAT if EDGE_LOG_FORMAT in ("json", "text") else "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},  # 4xx are client errors, already in the ledger
        "httpx": {"level": "WARNING"},  # one line per upstream call would drown everything else
        # uvicorn's own lines (start-up, an exception that escaped the application) in the same format,
        # redacted. Not "uvicorn" itself: configuring it would reset uvicorn.access, its child, and turn on
        # the access log that --no-access-log turned off (edge.requests has a richer line).
        "uvicorn.error": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}

# --- LLM Edge ---------------------------------------------------------------------------------
# Fernet keys (comma-separated) for provider secrets at rest: the first encrypts, all decrypt, so
# rotation is "prepend a new key, re-save secrets, drop the old one". Unset: derived from SECRET_KEY
# (checks.W001), which is fine for `make run` and nothing else.
EDGE_ENCRYPTION_KEYS = env_list("EDGE_ENCRYPTION_KEYS", [])
EDGE_MAX_BODY_BYTES = env_int("EDGE_MAX_BODY_BYTES", 20 * 1024 * 1024)  # request bodies over this get 413
DATA_UPLOAD_MAX_MEMORY_SIZE = EDGE_MAX_BODY_BYTES  # Django's own cap, kept in step with ours
EDGE_MAX_UPSTREAM_BODY_BYTES = env_int("EDGE_MAX_UPSTREAM_BODY_BYTES", 32 * 1024 * 1024)  # bigger → 502
EDGE_KEY_CACHE_TTL_S = env_float("EDGE_KEY_CACHE_TTL_S", 5.0)  # how long a revoked key may keep working
EDGE_CONFIG_TTL_S = env_float("EDGE_CONFIG_TTL_S", 2.0)  # how stale the routing snapshot may get
EDGE_ROUTING_SYNC_S = env_float("EDGE_ROUTING_SYNC_S", 0.25)  # how often breakers and health are shared via Redis
EDGE_LEDGER_SPOOL_DIR = Path(env_str("EDGE_LEDGER_SPOOL_DIR", str(VAR_DIR / "spool")))  # crash-safe ledger buffer
EDGE_LEDGER_FLUSH_INTERVAL_S = env_float("EDGE_LEDGER_FLUSH_INTERVAL_S", 0.25)  # spool → database cadence
EDGE_LEDGER_FSYNC = env_bool("EDGE_LEDGER_FSYNC", False)  # fsync each row: survives power loss, costs latency
# Ledger health (apps.billing.ledger.ledger_health): past this disk use of the spool directory (segments and
# quarantine) /health/ready is 503 while rows are still written; a row uncommitted this long makes /health degraded.
EDGE_LEDGER_SPOOL_MAX_BYTES = env_int("EDGE_LEDGER_SPOOL_MAX_BYTES", 1024 * 1024 * 1024)
EDGE_LEDGER_STUCK_AFTER_S = env_float("EDGE_LEDGER_STUCK_AFTER_S", 30.0)
# Admission (apps.billing.admission): the output cap of a request that sets none, when its deployment sets
# none either (Deployment.max_output_tokens); tokens and budget are reserved for that many output tokens.
EDGE_DEFAULT_MAX_OUTPUT_TOKENS = env_int("EDGE_DEFAULT_MAX_OUTPUT_TOKENS", 4096)
EDGE_UPSTREAM_MAX_CONNECTIONS = env_int("EDGE_UPSTREAM_MAX_CONNECTIONS", 1000)  # httpx pool per provider
# Response cache (apps.proxy.cache); whether a model is cached at all is its routing policy's choice.
EDGE_CACHE_L1_MAX_BYTES = env_int("EDGE_CACHE_L1_MAX_BYTES", 64 * 1024 * 1024)  # per-process LRU, by bytes
EDGE_CACHE_MAX_ENTRY_BYTES = env_int("EDGE_CACHE_MAX_ENTRY_BYTES", 1024 * 1024)  # larger answers are not cached
EDGE_CACHE_FLIGHT_WAIT_S = env_float("EDGE_CACHE_FLIGHT_WAIT_S", 30.0)  # most a request waits on an identical one
# ...and a streaming request, whose client sees nothing while it waits (0: streams never wait).
EDGE_CACHE_STREAM_FLIGHT_WAIT_S = env_float("EDGE_CACHE_STREAM_FLIGHT_WAIT_S", 1.0)

# --- Idempotency keys (apps.proxy.idempotency) ----------------------------------------------------
EDGE_IDEMPOTENCY_TTL_S = env_int("EDGE_IDEMPOTENCY_TTL_S", 24 * 60 * 60)  # how long a response is kept for repeats
# A response larger than this is kept without its body: a repeat gets 422 instead of the response.
EDGE_IDEMPOTENCY_MAX_BYTES = env_int("EDGE_IDEMPOTENCY_MAX_BYTES", 4 * 1024 * 1024)
# Per process: the store without Redis, and a copy of this process's responses with it (an LRU by bytes).
EDGE_IDEMPOTENCY_LOCAL_MAX_BYTES = env_int("EDGE_IDEMPOTENCY_LOCAL_MAX_BYTES", 64 * 1024 * 1024)
# Degraded service instead of failure, and smaller doors (apps.proxy.auth, apps.proxy.health, edge_project.db).
EDGE_DB_TIMEOUT_S = env_float("EDGE_DB_TIMEOUT_S", 1.0)  # bound on a request's database work, statements included
EDGE_KEY_STALE_S = env_float("EDGE_KEY_STALE_S", 300.0)  # database unreachable: key lookups this old are still used
EDGE_HEALTH_TOKEN = env_str("EDGE_HEALTH_TOKEN", "")  # bearer token for /health's detail (staff sessions see it too)
EDGE_TRUSTED_PROXIES = env_list("EDGE_TRUSTED_PROXIES", [])  # addresses/CIDRs whose X-Forwarded-For is believed
EDGE_AUTH_FAILURES_MAX = env_int("EDGE_AUTH_FAILURES_MAX", 20)  # failed key checks per address per window; 0: off
EDGE_AUTH_FAILURES_WINDOW_S = env_float("EDGE_AUTH_FAILURES_WINDOW_S", 60.0)  # ...the window, from its first failure
# Admission (apps.billing.admission): rate limits, concurrency caps and budgets. A budget period's spend is
# rebuilt from the ledger when no counter knows it; a rebuild slower than this is abandoned, and that request
# is not held to that budget (the next one tries again).
EDGE_BUDGET_REBUILD_TIMEOUT_S = env_float("EDGE_BUDGET_REBUILD_TIMEOUT_S", 2.0)

# --- Background work: Celery, budget alerts, rollup checks, retention (apps.billing.tasks) -----------
# Celery's broker is the gateway's Redis; without it (`make run`) tasks run eagerly, in the process that
# calls them, and the gateway runs the schedule itself (edge_project.periodic).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "")  # default: REDIS_URL
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL  # no broker: .delay() runs the task at once, in-process
CELERY_TASK_EAGER_PROPAGATES = True  # ...and raises its errors there rather than burying them in a result
CELERY_TASK_IGNORE_RESULT = True  # tasks report through logs, metrics and rows; nothing awaits a result
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True  # a worker started before Redis waits for it
# The installation's Redis prefix on the broker's keys too, so two installations can share one Redis.
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": EDGE_REDIS_PREFIX}
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep LOGGING's JSON lines
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60)  # a stuck task is killed after this (s)
EDGE_RETENTION_MONTHS = env_int("EDGE_RETENTION_MONTHS", 0)  # ledger months kept (current included); 0: keep all
EDGE_RETENTION_DIR = Path(env_str("EDGE_RETENTION_DIR", str(VAR_DIR / "archive")))  # archived months (.jsonl.gz)
# Entry intervals of the schedule (edge_project.schedule): "budget-alerts=30,verify-rollups=0" (0: off).
CELERY_BEAT_SCHEDULE = beat_schedule(env_str("EDGE_SCHEDULE", ""), retention_months=EDGE_RETENTION_MONTHS)
EDGE_PERIODIC_IN_PROCESS = env_bool("EDGE_PERIODIC_IN_PROCESS", True)  # no broker: the gateway runs the schedule
EDGE_ROLLUP_VERIFY_WINDOW_S = env_int("EDGE_ROLLUP_VERIFY_WINDOW_S", 2 * 60 * 60)  # hours checked against the ledger
# Budget alerts: a key's or tenant's spend in its budget period passing each of these percentages of its
# budget is sent once (per period) to its tenant's webhook and emails, and to the URL below.
EDGE_BUDGET_ALERT_THRESHOLDS = env_list("EDGE_BUDGET_ALERT_THRESHOLDS", ["50", "80", "100"])
EDGE_BUDGET_ALERT_WEBHOOK_URL = env_str("EDGE_BUDGET_ALERT_WEBHOOK_URL", "")  # every tenant's alerts; "": none
EDGE_BUDGET_ALERT_WEBHOOK_SECRET = env_str("EDGE_BUDGET_ALERT_WEBHOOK_SECRET", "")  # HMAC-SHA256 key; "": unsigned
EDGE_BUDGET_ALERT_TIMEOUT_S = env_float("EDGE_BUDGET_ALERT_TIMEOUT_S", 5.0)  # one webhook POST, connect to last byte
EDGE_BUDGET_ALERT_ATTEMPTS = env_int("EDGE_BUDGET_ALERT_ATTEMPTS", 5)  # deliveries tried (one per run) before giving up
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "llm-edge@localhost")  # sender of alert emails
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)  # seconds; an SMTP server that hangs must not hold the worker
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # for EMAIL_BACKEND=...filebased.EmailBackend

# --- Cost reports (apps.billing.reports) ---
# Who bills the tenants: FOCUS exports name it as InvoiceIssuerName (the gateway's operator).
EDGE_INVOICE_ISSUER_NAME = env_str("EDGE_INVOICE_ISSUER_NAME", "LLM Edge")
# --- Stored responses (apps.proxy.responses.store): what /v1/responses keeps for previous_response_id ---------
EDGE_RESPONSES_RETENTION_S = env_int("EDGE_RESPONSES_RETENTION_S", 30 * 24 * 60 * 60)  # kept this long (as OpenAI)
# Per process: the store without Redis (`make run`), and while Redis is unusable (an LRU by bytes).
EDGE_RESPONSES_LOCAL_MAX_BYTES = env_int("EDGE_RESPONSES_LOCAL_MAX_BYTES", 64 * 1024 * 1024)
# --- Metrics (apps.proxy.metrics; /metrics in Prometheus' text format) ----------------------------
# Each gateway instance (a uvicorn supervisor and its workers) keeps its counters in its own fresh
# directory under this one (edge_project.metrics_dir); it must be on local disk, never shared by hosts.
EDGE_METRICS_DIR = Path(env_str("EDGE_METRICS_DIR", str(VAR_DIR / "metrics")))
EDGE_METRICS_TOKEN = env_str("EDGE_METRICS_TOKEN", "")  # bearer token that may read /metrics from anywhere
# Addresses/CIDRs that may read /metrics without the token (the client address as apps.proxy.client_address
# sees it); loopback by default, so `make run` is readable locally. "none": the token only.
EDGE_METRICS_ALLOWED_NETWORKS = [
    entry for entry in env_list("EDGE_METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"]) if entry != "none"
]
