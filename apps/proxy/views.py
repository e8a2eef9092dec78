"""The ``/v1/`` views: authentication, then the pipeline, with one exception funnel."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, ClassVar

import orjson
from adrf.views import APIView
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import KeyInfo
from apps.providers.errors import OpenAIError
from apps.proxy.auth import authenticate
from apps.proxy.endpoint import Endpoint
from apps.proxy.errors import error_response, unexpected
from apps.proxy.exchange import Exchange
from apps.proxy.pipeline import permitted_route, serve
from apps.proxy.replays import keep, let_go
from apps.proxy.request_span import request_span
from apps.proxy.streaming import CLIENT_CLOSED_REQUEST
from apps.routing.table import ModelRoute, routing_tables


class GatewayView(APIView):
    """Base of every ``/v1/`` view.

    It replaces DRF's per-request dispatch (content negotiation, DRF's authenticators and
    permission checks, and adrf's thread hop to run them) with the gateway's own steps: the body
    is read as bytes and decoded once by the endpoint, authentication is ``apps.proxy.auth``, and
    every exception ends in ``render_error()``: OpenAI's error body, unless the endpoint speaks
    another API (``/v1/messages`` answers in Anthropic's). Every exit settles the request
    (``Exchange.finish``): one ledger row per authenticated request, whatever happened.
    """

    endpoint: str = ""  # the ledger's endpoint name
    authentication_classes: ClassVar[list[Any]] = []
    permission_classes: ClassVar[list[Any]] = []

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # Straight to the async path: adrf's dispatch() re-derives view_is_async from every handler
        # on each request to choose between its sync and async paths, and ours are all async.
        return self.async_dispatch(request, *args, **kwargs)

    async def async_dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        exchange = Exchange(endpoint=self.endpoint)
        with request_span(exchange):  # ended by exchange.finish(), after a stream's last event
            try:
                handler = self.handler_for(request.method or "")
                exchange.key = await authenticate(request)
                response = await handler(request, exchange, exchange.key, **kwargs)
            except asyncio.CancelledError:
                # The client left before the response began (Django cancels the view): still one row.
                exchange.finish(status="cancelled", http_status=CLIENT_CLOSED_REQUEST)
                let_go(exchange)
                raise
            except Exception as exc:
                error = exc if isinstance(exc, OpenAIError) else unexpected(exc)
                exchange.finish(status="error", http_status=error.status, error_type=error.code or error.type)
                response = self.render_error(error)
            return await keep(exchange, exchange.stamp(response))

    def render_error(self, error: OpenAIError) -> HttpResponse:
        """The error body this endpoint's clients read: OpenAI's, unless the endpoint speaks another API."""
        return error_response(error)

    def handler_for(self, method: str) -> Any:
        handler = getattr(self, method.lower(), None)
        if method.lower() not in self.served_methods():
            allowed = ", ".join(name.upper() for name in self.served_methods())
            raise OpenAIError(f"Method {method} is not allowed here; this path takes {allowed}.", status=405,
                              type="invalid_request_error", code="method_not_allowed", headers={"Allow": allowed})
        return handler

    @classmethod
    def served_methods(cls) -> list[str]:
        # Only this view's own async handlers: DRF's inherited ones (options) are sync.
        return [name for name in cls.http_method_names if inspect.iscoroutinefunction(getattr(cls, name, None))]


class EndpointView(GatewayView):
    """``POST`` to one endpoint of the pipeline (``as_view(endpoint=…)`` in the URLconf)."""

    serves: Endpoint[Any] | None = None

    @classmethod
    def for_endpoint(cls, endpoint: Endpoint[Any]) -> Any:
        return cls.as_view(endpoint=endpoint.name, serves=endpoint)

    async def post(self, request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
        assert self.serves is not None  # as_view() always sets it
        return await serve(request, exchange, self.serves)

    def render_error(self, error: OpenAIError) -> HttpResponse:
        return self.serves.render_error(error) if self.serves is not None else super().render_error(error)


class ModelsView(GatewayView):
    endpoint = "models"

    async def get(self, request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
        table = await routing_tables.current()
        models = [model_object(route.name, route) for route in table.routes.values() if key.may_use(route.name)]
        exchange.finish(status="ok", http_status=200)
        return HttpResponse(orjson.dumps({"object": "list", "data": models}), content_type="application/json")


class ModelView(GatewayView):
    """``GET /v1/models/{id}``: one model the key may use (ids may hold slashes: ``meta-llama/Llama-3-8B``).

    A name a pattern route serves (``claude-*``) is found as chat completions would find it; unknown
    and forbidden names get the same 404, so a key learns nothing of other tenants' models.
    """

    endpoint = "models"

    async def get(self, request: HttpRequest, exchange: Exchange, key: KeyInfo, model_id: str) -> HttpResponseBase:
        exchange.model = model_id
        route = permitted_route(await routing_tables.current(), key, model_id)
        exchange.finish(status="ok", http_status=200)
        return HttpResponse(orjson.dumps(model_object(model_id, route)), content_type="application/json")


def model_object(model_id: str, route: ModelRoute) -> dict[str, Any]:
    """OpenAI's model object."""
    return {"id": model_id, "object": "model", "created": route.created, "owned_by": "llm-edge"}
