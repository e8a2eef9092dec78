#!/usr/bin/env bash
# `make run`: the gateway on this machine with nothing else installed. SQLite in var/, in-process
# limits and caches, the fake upstream on 127.0.0.1:18080 as provider `fake` (config/demo.yaml),
# a demo key and an admin/admin superuser. Ctrl-C stops the gateway and the fake upstream together.
#
# Environment: PORT (gateway port, default 8080), PYTHON (default .venv/bin/python). DATABASE_URL
# and REDIS_URL are honoured if set; unset, the embedded defaults are used.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
PORT=${PORT:-8080}
FAKE_PORT=18080  # config/demo.yaml points provider `fake` here
KEY_FILE=var/demo-key.txt
GATEWAY_URL="http://127.0.0.1:${PORT}"
export DEBUG=${DEBUG:-true}  # the built-in SECRET_KEY is refused (edge.E002) when DEBUG is off
export EDGE_LOG_FORMAT=${EDGE_LOG_FORMAT:-text}  # a person reads these lines; production keeps JSON

say() { printf '==> %s\n' "$*"; }
die() { printf 'make run: %s\n' "$*" >&2; exit 1; }
manage() { "$PYTHON" manage.py "$@"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fake_pid=""
server_pid=""
stop_children() {
    trap - EXIT INT TERM
    local pid
    for pid in $server_pid $fake_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap stop_children EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Exit status 0 if the key in $KEY_FILE is still an active key of tenant `demo` in this database.
demo_key_works() {
    [[ -s $KEY_FILE ]] || return 1
    EDGE_DEMO_KEY=$(<"$KEY_FILE") manage shell --verbosity 0 --command '
import os, sys
from apps.billing.keys import hash_key
from apps.billing.models import ApiKey
raw = os.environ["EDGE_DEMO_KEY"]
sys.exit(0 if ApiKey.objects.active().filter(key_hash=hash_key(raw), tenant__slug="demo").exists() else 1)
' >/dev/null 2>&1
}

mkdir -p var

say "migrating the database"
manage migrate --noinput

say "applying config/demo.yaml"
manage edge_apply config/demo.yaml

if demo_key_works; then
    say "reusing the demo key in $KEY_FILE"
else
    say "creating a demo key for tenant demo"
    key=$(manage edge_key create --tenant demo --name demo | tail -1)
    [[ $key == sk-* ]] || die "edge_key create printed no key (last line: '$key')"
    (umask 077 && printf '%s\n' "$key" >"$KEY_FILE")
fi
demo_key=$(<"$KEY_FILE")

say "ensuring the admin superuser (admin/admin)"
if ! output=$(DJANGO_SUPERUSER_PASSWORD=admin manage createsuperuser --noinput --username admin \
        --email admin@localhost 2>&1); then
    grep -qi "already" <<<"$output" || die "createsuperuser failed: $output"
fi

port_open "$FAKE_PORT" && die "port $FAKE_PORT is taken (another make run?); the fake upstream needs it"
say "starting the fake upstream on 127.0.0.1:$FAKE_PORT"
"$PYTHON" manage.py edge_fake_upstream --port "$FAKE_PORT" &  # not via manage(): $! must be python
fake_pid=$!

say "starting the gateway on $GATEWAY_URL"
"$PYTHON" -m uvicorn edge_project.asgi:application --host 127.0.0.1 --port "$PORT" --no-proxy-headers --no-access-log &  # edge.requests logs each request
server_pid=$!

for _ in $(seq 150); do
    kill -0 "$fake_pid" 2>/dev/null || die "the fake upstream exited"
    kill -0 "$server_pid" 2>/dev/null || die "the gateway exited"
    port_open "$FAKE_PORT" && port_open "$PORT" && break
    sleep 0.2
done
port_open "$PORT" || die "the gateway did not start listening on port $PORT"

cat <<EOF

  LLM Edge is running at $GATEWAY_URL   (Ctrl-C stops it and the fake upstream)

  Demo API key (tenant demo):  $demo_key
  Admin:                       $GATEWAY_URL/admin/   (admin / admin)
  Metrics:                     $GATEWAY_URL/metrics  (Prometheus format, readable from this machine)

  Try it:

curl -i $GATEWAY_URL/v1/chat/completions \\
  -H "Authorization: Bearer $demo_key" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}'

  Background work (budget alerts, rollup checks, retention) runs inside this gateway: no Redis, no
  Celery broker. In production, with REDIS_URL set, run beside the gateways (README, "Background work"):
    celery -A edge_project worker --loglevel INFO     (as many as you like)
    celery -A edge_project beat --loglevel INFO       (exactly one)

EOF

wait "$server_pid"
