from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.handlers.asgi import ASGIHandler

from apps.billing.admission import admission
from apps.billing.ledger import start_ledger, stop_ledger
from apps.providers.http import close_clients
from apps.proxy.body_limit import BodySizeLimit
from apps.proxy.cache.service import stop_cache
from apps.proxy.metrics import observe as metrics
from apps.proxy.metrics.upkeep import upkeep as metrics_upkeep
from edge_project.api_handler import ApiHandler
from edge_project.background import finish_background_work
from edge_project.periodic import periodic
from edge_project.redis_clients import close_async_redis

logger = logging.getLogger(__name__)


class EdgeApplication:
    def __init__(self) -> None:
        self.api = BodySizeLimit(ApiHandler())
        # Admin's static files, served by Django: small, and no extra server needed for `make run`.
        self.browser = BodySizeLimit(ASGIStaticFilesHandler(ASGIHandler()))
        # Built once in each process that serves it (each uvicorn worker, daphne, `runserver`), and in
        # no other (no other command imports edge_project.asgi): the spool starts with the
        # process, so a dead process's rows are replayed before any request comes, also under servers
        # that send no lifespan events. It touches no database; the lifespan's start is then a no-op.
        start_ledger()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self.lifespan(receive, send)
        path = scope.get("path", "")
        if path.startswith("/v1/"):
            await self.serve_api(scope, receive, send)
        else:
            await (self.api if path.startswith(settings.API_PATH_PREFIXES) else self.browser)(scope, receive, send)

    async def serve_api(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        metrics.connection_opened()  # until the last byte of a stream too: the handler returns after it is sent
        try:
            await self.api(scope, receive, send)
        finally:
            metrics.connection_closed()

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.to_thread(start_ledger)  # replays spool segments of dead processes
                except Exception as exc:
                    logger.exception("gateway start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                admission.start()  # counted among the processes that share the limits while Redis is down
                metrics_upkeep.start()
                periodic.start()  # scheduled tasks, when no Celery broker runs them (edge_project.periodic)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await periodic.stop()
                await metrics_upkeep.stop()
                await close_clients()
                await finish_background_work(settings.REDIS_TIMEOUT_S * 4)  # L2 writes, before Redis clients close
                await stop_cache()
                await admission.stop()  # leaves the processes Redis counts
                await close_async_redis()
                await asyncio.to_thread(stop_ledger)  # commits what it can; the rest stays spooled
                await send({"type": "lifespan.shutdown.complete"})
                return
