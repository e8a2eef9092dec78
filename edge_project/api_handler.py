"""The ASGI handler of the API paths: Django's, with API_MIDDLEWARE and without the request signals.

Django sends ``request_started`` and ``request_finished`` around every request. Their receivers
(closing stale database connections, resetting the debug query log) are synchronous, so under ASGI
each signal is a hop to a thread, and the first hop of a request starts a fresh executor thread:
about a tenth of a fast request's CPU, measured under load. The API path has nothing for them to
do: it reaches the database only from executor threads that hand their connection back themselves
(``edge_project.db.release_connection``), and it runs no debug query log. Admin and every other
browser path keep Django's own handler, signals included.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class ApiHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler reads settings.MIDDLEWARE directly; swap it only while the chain is built,
        # once per process at start-up.
        browser_middleware = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = browser_middleware

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with contextlib.closing(body_file):
            request, error_response = self.create_request(scope, body_file)
            if request is None:  # Django could not build one (a bad header, say): its own 400
                assert error_response is not None
                await self.send_response(error_response, send)
                return
            await self._serve_until_disconnect(request, receive, send)

    async def _serve_until_disconnect(self, request: HttpRequest, receive: Any, send: Any) -> None:
        """Serve the request, cancelling it if the client disconnects first (views see the cancel)."""
        serving = asyncio.create_task(self._serve(request, send))
        disconnect = asyncio.create_task(self.listen_for_disconnect(receive))
        await asyncio.wait((serving, disconnect), return_when=asyncio.FIRST_COMPLETED)
        for task in (disconnect, serving):  # the listener first: it must not outlive the request
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                await task

    async def _serve(self, request: HttpRequest, send: Any) -> None:
        response: HttpResponseBase = await self.run_get_response(request)
        try:
            await self.send_response(response, send)
        except asyncio.CancelledError:
            pass  # the client left while the body was being sent
        finally:
            _release_resources(response)


def _release_resources(response: HttpResponseBase) -> None:
    # What HttpResponse.close() does, less the request_finished signal: close the files and
    # iterators the response holds (the API's own responses hold none, but a 404 page might).
    closers: list[Any] = getattr(response, "_resource_closers", [])  # private, and untyped in django-stubs
    for closer in closers:
        with contextlib.suppress(Exception):
            closer()
    closers.clear()
    response.closed = True
