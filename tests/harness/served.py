"""A model served by a live gateway, a key for it, and the clients and ledger reads tests need.

Each ``serve()`` makes its own provider, public model, upstream model id and tenant, so tests that
share the session gateway and the session fake never see each other's rules or rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
from django.db import transaction

from apps.billing.models import ApiKey, LedgerEntry, Tenant
from apps.providers.models import Provider
from tests.conftest import wait_until_served
from tests.factories import Route, make_key, make_route, make_tenant, unique
from tests.harness.gateway import GatewayProcess

CHAT_PATH = "/v1/chat/completions"
# Where each provider kind's API lives on the fake upstream (Azure's base URL is the resource root).
FAKE_BASE_PATHS = {"openai": "/v1", "openai_compatible": "/v1", "anthropic": "/v1", "gemini": "/v1beta",
                   "azure_openai": ""}


@dataclass
class Served:
    gateway: GatewayProcess
    route: Route
    tenant: Tenant
    key: ApiKey
    raw_key: str

    @property
    def model(self) -> str:
        return self.route.model.name

    @property
    def upstream_model(self) -> str:
        return self.route.deployment.upstream_model

    def client(self, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(**self._sdk_options(options))

    def async_client(self, **options: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(**self._sdk_options(options))

    def _sdk_options(self, options: dict[str, Any]) -> dict[str, Any]:
        # No SDK retries: a test must see the gateway's first answer, not the SDK's third try.
        return {"base_url": f"{self.gateway.url}/v1", "api_key": self.raw_key, "max_retries": 0, **options}

    def anthropic_client(self, **options: Any) -> anthropic.Anthropic:
        """The official anthropic SDK pointed at the gateway's /v1/messages, with the gateway key."""
        return anthropic.Anthropic(base_url=self.gateway.url, api_key=self.raw_key, max_retries=0, **options)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.raw_key}", **extra}

    def post(self, body: Any = None, *, content: bytes | None = None, path: str = CHAT_PATH,
             headers: dict[str, str] | None = None, timeout_s: float = 10) -> httpx.Response:
        """A raw request, for what the SDK would refuse to send."""
        headers = self.headers() if headers is None else headers
        if content is None and body is not None:
            return httpx.post(f"{self.gateway.url}{path}", json=body, headers=headers, timeout=timeout_s)
        return httpx.post(f"{self.gateway.url}{path}", content=content, headers=headers, timeout=timeout_s)

    def chat_body(self, text: str = "hello there friend", **params: Any) -> dict[str, Any]:
        return {"model": self.model, "messages": [{"role": "user", "content": text}], **params}

    def wait_for_provider(self, name: str, timeout_s: float = 5.0) -> None:
        """Block until the gateway's routing table includes provider ``name`` (config is eventually consistent)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if name in self.gateway.health_detail()["providers"].get("configured", []):
                return
            time.sleep(0.05)
        raise AssertionError(f"the gateway never routed to provider {name}")

    def another_key(self, **options: Any) -> tuple[ApiKey, str]:
        """A second, never used key of the same tenant: its ledger rows start from zero."""
        return make_key(self.tenant, **options)


def serve(gateway: GatewayProcess, fake_v1: str, *, timeout_s: float | None = None,
          allowed_models: list[str] | None = None, **route_options: Any) -> Served:
    """Configure a route (committed at once, so the gateway never sees it half made) and wait until served."""
    route_options.setdefault("upstream_model", unique("upstream"))
    with transaction.atomic():
        route = make_route(fake_v1, **route_options)
        if timeout_s is not None:
            Provider.objects.filter(pk=route.provider.pk).update(timeout_s=timeout_s)
            route.provider.refresh_from_db()
    tenant = make_tenant()
    key, raw_key = make_key(tenant, allowed_models=allowed_models)
    wait_until_served(gateway.url, raw_key, route.model.name)
    return Served(gateway=gateway, route=route, tenant=tenant, key=key, raw_key=raw_key)


def serve_kind(gateway: GatewayProcess, fake_root: str, kind: str, **options: Any) -> Served:
    """``serve()`` on a provider of ``kind``, at the fake upstream's path for that wire format."""
    return serve(gateway, fake_root + FAKE_BASE_PATHS[kind], kind=kind, **options)


def ledger_row(request_id: str, timeout_s: float = 10.0) -> LedgerEntry:
    """The row for ``request_id``, waiting for the gateway's spool to commit it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = LedgerEntry.objects.filter(request_id=request_id).first()
        if row is not None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"no ledger row for {request_id}")


def wait_for_rows(request_ids: Iterable[str], timeout_s: float = 15.0) -> dict[str, LedgerEntry]:
    """Rows for all of ``request_ids``, or an assertion naming how many are missing."""
    wanted = set(request_ids)
    deadline = time.monotonic() + timeout_s
    while True:
        rows = {row.request_id: row for row in LedgerEntry.objects.filter(request_id__in=wanted)}
        if len(rows) == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(rows) == len(wanted), f"{len(wanted) - len(rows)} of {len(wanted)} requests have no ledger row"
    return rows
