"""``GET /v1/organization/costs`` and ``/v1/organization/usage/{completions,embeddings}``: the calling
key's tenant's usage and costs in OpenAI's shapes (apps.billing.reports.openai_usage says how they map).

Only keys with the ``reports`` scope may read them; any other key gets a 403 in OpenAI's error shape.
A key reads its own tenant's numbers and no other's: the tenant comes from the key, never from the
request. Amounts are written as exact JSON numbers (every stored decimal digit), not floats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.billing.keys import REPORTS_SCOPE, KeyInfo
from apps.billing.reports.openai_usage import UsageQuery, parse_query, usage_page
from apps.providers.errors import OpenAIError
from apps.proxy.exchange import Exchange
from apps.proxy.views import GatewayView
from edge_project.db import release_connection


class MissingScope(OpenAIError):
    status = 403
    type = "invalid_request_error"
    code = "insufficient_permissions"


class OrganizationUsageView(GatewayView):
    kind = ""  # costs, completions or embeddings

    @classmethod
    def for_kind(cls, kind: str, endpoint: str) -> Any:
        return cls.as_view(kind=kind, endpoint=endpoint)

    async def get(self, request: HttpRequest, exchange: Exchange, key: KeyInfo) -> HttpResponseBase:
        if REPORTS_SCOPE not in key.scopes:
            raise MissingScope("You have insufficient permissions for this operation: the key needs the "
                               f"'{REPORTS_SCOPE}' scope to read usage and costs.")
        query = parse_query(self.kind, key.tenant_id, dict(request.GET.lists()))
        page = await sync_to_async(_read, thread_sensitive=False)(query)
        exchange.finish(status="ok", http_status=200)
        return HttpResponse(orjson.dumps(page, default=_exact), content_type="application/json")


def _read(query: UsageQuery) -> dict[str, Any]:
    """On a worker thread: a report may take longer than request-path lookups are allowed (run_bounded), and
    must not mark the database failing when it does. The thread's connection goes back to the pool after."""
    try:
        return usage_page(query)
    finally:
        release_connection()


def _exact(value: object) -> orjson.Fragment:
    """A Decimal as a JSON number with all its digits ("0.0000004500", trailing zeros dropped)."""
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value.normalize(), "f"))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
