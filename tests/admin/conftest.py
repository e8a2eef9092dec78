"""Helpers for the admin tests: ledger rows, query-count comparison, and a real Chromium for the
browser tests (Debian's /usr/bin/chromium driven by Playwright from PyPI; never `playwright install`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, connections
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from apps.billing.models import ApiKey, LedgerEntry, Tenant
from apps.billing.rollups import SOURCE_COLUMNS, add_to_rollups
from tests.factories import unique

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
BASE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
# The ledger list shows the last 24 hours unless asked for a range: this one holds make_entry's rows.
LEDGER_RANGE = {"since": "2026-11-01", "until": "2026-11-30"}
_minutes = itertools.count()


def make_entry(tenant: Tenant, key: ApiKey | None = None, **fields: Any) -> LedgerEntry:
    """A request row as the gateway would write it, rollups included; each call is a minute later than the last."""
    values: dict[str, Any] = {
        "request_id": unique("req"), "tenant": tenant, "api_key": key, "endpoint": "chat.completions",
        "public_model": "gpt-test", "provider": "prov-test", "upstream_model": "up-test", "status": "ok",
        "http_status": 200, "prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 0,
        "usage_source": "provider", "cost_usd": Decimal("0.0000045000"), "latency_ms": 120,
        "created_at": BASE_TIME + timedelta(minutes=next(_minutes)),
    }
    entry = LedgerEntry.objects.create(**{**values, **fields})
    # As the ledger writer does (apps.billing.ledger_write): the row counts in the rollups at once.
    add_to_rollups([LedgerEntry.objects.filter(pk=entry.pk).values(*SOURCE_COLUMNS).get()])
    return entry


def read_stream(response: StreamingHttpResponse) -> str:
    """The whole body of a streamed response, read the way an ASGI server reads it (asynchronously)."""
    assert response.streaming and response.is_async

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[union-attr]

    return async_to_sync(collect)().decode()


def count_queries(action: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured.captured_queries)


# --- browser ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per test module.

    Playwright's sync API leaves its event loop registered as running in this thread (parked in a
    greenlet), which trips Django's guard against ORM calls from async code. The tests' ORM calls
    still run synchronously, one at a time, so the guard is lifted, for as long as Playwright runs
    and no longer: module scope, so that tests in later modules get both the loop and the guard back.
    """
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs `pip install playwright`")
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (`apt-get install chromium`)")
    with pytest.MonkeyPatch.context() as patch, sync_api.sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
        # A connection opened while Playwright ran is held in its context, out of reach of the
        # session's teardown, and would stop it dropping the test database.
        connections.close_all()


@pytest.fixture
def superuser_login(live_db: None) -> tuple[str, str]:
    """A committed superuser the gateway process can authenticate.

    Hashed with PBKDF2 at a low iteration count: the test settings' MD5 hasher is not one the
    gateway (production settings) accepts, and the gateway upgrades the hash at first login anyway.
    """
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import User

    username, password = unique("operator"), "not-a-real-password-1"
    hasher = PBKDF2PasswordHasher()
    User.objects.create(username=username, is_staff=True, is_superuser=True,
                        password=hasher.encode(password, hasher.salt(), iterations=1000))
    return username, password


@pytest.fixture
def admin_page(chromium: Any, gateway: Any, superuser_login: tuple[str, str]) -> Iterator[Any]:
    """A Chromium tab logged in to the gateway process's admin."""
    context = chromium.new_context(
        base_url=gateway.url, accept_downloads=True, viewport={"width": 1600, "height": 1000}
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", superuser_login[0])
    page.fill("#id_password", superuser_login[1])
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    yield page
    context.close()
