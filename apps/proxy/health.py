"""Health endpoints for load balancers and operators.

``/health/live``: the process answers. ``/health/ready``: it can serve (database reachable, ledger
spool under its disk bound). ``/health``: overall status for anyone; the details, per dependency,
only for operators (``apps.proxy.operators``): providers, deployments and breaker states are no one
else's business.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse

from apps.billing.ledger import ledger_health
from apps.proxy.operators import is_operator
from apps.routing.shared_state import shared_state
from apps.routing.table import RoutingTable, routing_tables
from edge_project.db import DatabaseUnavailable, run_bounded
from edge_project.redis_clients import redis_options


async def live(request: HttpRequest) -> HttpResponse:
    return _json({"status": "ok"}, 200)


async def ready(request: HttpRequest) -> HttpResponse:
    database = await check_database()
    # A full spool still takes rows, but a load balancer should drain this process until they commit.
    status = "error" if ledger_health()["spool_full"] else database["status"]
    return _json({"status": status}, 200 if status == "ok" else 503)


async def health(request: HttpRequest) -> HttpResponse:
    checks: dict[str, Any] = {"database": await check_database()}
    if settings.REDIS_URL:
        checks["redis"] = await sync_to_async(check_redis)()
    checks["providers"] = await describe_providers()
    checks["ledger"] = ledger_health()
    healthy = all(check["status"] == "ok" for check in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded"}
    if await is_operator(request):
        body["checks"] = checks
    return _json(body, 200 if healthy else 503)


async def check_database() -> dict[str, Any]:
    """``SELECT 1`` as the request path would ask it: bounded by EDGE_DB_TIMEOUT_S, so a hung database
    makes the answer "error" within that, not a load balancer's timeout."""
    started = time.perf_counter()
    try:
        await run_bounded(_select_one)
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc, DatabaseUnavailable) and exc.__cause__ else exc
        return {"status": "error", "error": type(cause).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> dict[str, Any]:
    started = time.perf_counter()
    # Its own client, not the shared one: a health check must try Redis even during a cool-down.
    client = redis.Redis.from_url(str(settings.REDIS_URL), **redis_options())
    try:
        client.ping()
    except Exception as exc:
        return {"status": "error", "error": type(exc).__name__}
    finally:
        client.close()
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def describe_providers() -> dict[str, Any]:
    try:
        table = await routing_tables.current()
    except Exception as exc:
        return {"status": "error", "error": type(exc).__name__}
    providers = sorted({target.upstream.provider_name for route in table.routes.values() for target in route.targets})
    unserved = sorted(name for name, route in table.routes.items() if not route.targets)
    return {"status": "ok", "configured": providers, "models_without_deployments": unserved,
            "deployments": describe_deployments(table)}


def describe_deployments(table: RoutingTable) -> dict[str, dict[str, Any]]:
    """Each deployment as this process sees it (breakers and health are shared through Redis)."""
    described = {}
    for route in (*table.routes.values(), *table.patterns):
        for target in route.targets:
            health = shared_state.health.view(target.deployment_id)
            described[f"{route.name} → {target.label}"] = {
                "breaker": shared_state.breakers.state_of(target),
                "success_rate": None if health.success_rate is None else round(health.success_rate, 4),
                "latency_ms": None if health.latency_ms is None else round(health.latency_ms, 1),
                "ttft_ms": None if health.ttft_ms is None else round(health.ttft_ms, 1),
            }
    return described


def _json(body: dict[str, Any], status: int) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
