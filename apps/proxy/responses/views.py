"""``GET`` and ``DELETE /v1/responses/{id}``, and ``GET …/input_items``: a tenant's stored responses (``store.py``).

Another tenant's id, an expired one and one never stored are alike: OpenAI's 404. Each request is one
ledger row (``stored_responses``), costing nothing, like ``GET /v1/models``.
"""

from __future__ import annotations

import orjson
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import KeyInfo
from apps.providers.errors import OpenAIError
from apps.proxy.exchange import Exchange
from apps.proxy.responses import store
from apps.proxy.responses.items import page
from apps.proxy.views import GatewayView


class StoredResponseView(GatewayView):
    endpoint = "stored_responses"

    async def get(self, request: HttpRequest, exchange: Exchange, key: KeyInfo, response_id: str) -> HttpResponseBase:
        stored = await store.find(key.tenant_id, response_id)
        if stored is None:
            raise not_found(response_id)
        exchange.finish(status="ok", http_status=200)
        return HttpResponse(orjson.dumps(stored.response), content_type="application/json")

    async def delete(self, request: HttpRequest, exchange: Exchange, key: KeyInfo, response_id: str
                     ) -> HttpResponseBase:
        if not await store.forget(key.tenant_id, response_id):
            raise not_found(response_id)
        exchange.finish(status="ok", http_status=200)
        body = {"id": response_id, "object": "response.deleted", "deleted": True}
        return HttpResponse(orjson.dumps(body), content_type="application/json")


class InputItemsView(GatewayView):
    """``GET /v1/responses/{id}/input_items``: what the stored response was asked with (``items.py``)."""

    endpoint = "stored_responses"

    async def get(self, request: HttpRequest, exchange: Exchange, key: KeyInfo, response_id: str) -> HttpResponseBase:
        stored = await store.find(key.tenant_id, response_id)
        if stored is None:
            raise not_found(response_id)
        listing = page(response_id, stored.input[stored.turn:], request.GET)
        exchange.finish(status="ok", http_status=200)
        return HttpResponse(orjson.dumps(listing), content_type="application/json")


def not_found(response_id: str) -> OpenAIError:
    return OpenAIError(f"Response with id '{response_id}' not found.", status=404, type="invalid_request_error",
                       param="response_id", code="not_found")
