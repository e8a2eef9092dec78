"""How fast admin answers on a big ledger: every ledger, tenant and key page, timed in-process.

    .venv/bin/python bench/admin_pages.py --database scale_10m          # after bench/ledger_rows.py
    .venv/bin/python bench/admin_pages.py --database scale_10m --page "costs=/admin/reports/costs/"

Each page is requested through Django's test client (the whole view: queries, template, middleware;
no network) by a superuser, once to warm the database's cache and ``--repeats`` times measured; the
median and worst are printed with the page's query count, and whether any query used COUNT or
OFFSET. Exit status 1 when a page's worst time is over ``--budget-ms`` (default 1000).

Pages are listed in ``pages()`` and ``report_pages()``; more are added there or with ``--page NAME=URL``
(repeatable). Budget figures on tenant and key pages come from admission; the script runs
without Redis, so they are rebuilt from the ledger, which is the slow case.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.test import Client

REPO = Path(__file__).resolve().parent.parent
SERVER = "postgres://postgres@127.0.0.1:5432"


@dataclass
class Timing:
    name: str
    median_ms: float
    worst_ms: float
    queries: int
    count_or_offset: bool
    status: int


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="scale_10m")
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget-ms", type=float, default=1000.0)
    parser.add_argument("--page", action="append", default=[], help="NAME=URL, another page to time (repeatable)")
    args = parser.parse_args()
    setup_django(f"{args.server}/{args.database}")
    client = logged_in_client()
    extra = [(name, lambda url=url: url) for name, _, url in (page.partition("=") for page in args.page)]
    timings = [time_page(client, name, url, args.repeats) for name, url in [*pages(client), *extra]]
    print_table(timings, args.budget_ms)
    return 0 if all(timing.worst_ms <= args.budget_ms and timing.status == 200 for timing in timings) else 1


def setup_django(database_url: str) -> None:
    sys.path.insert(0, str(REPO))
    os.environ.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="edge_project.settings.base",
                      ALLOWED_HOSTS="testserver", DEBUG="false", DATABASE_POOL_MAX_SIZE="0")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def logged_in_client() -> Client:
    from django.contrib.auth.models import User
    from django.test import Client

    user, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    return client


def pages(client: Client) -> list[tuple[str, Callable[[], str]]]:
    """(name, a function giving the URL): the URL of a page may depend on the page before it (cursors)."""
    from apps.billing.models import ApiKey, LedgerEntry, Tenant

    ledger = "/admin/billing/ledgerentry/"
    big, small = Tenant.objects.order_by("pk").first(), Tenant.objects.order_by("-pk").first()
    assert big is not None and small is not None, "no tenants: load the database with bench/ledger_rows.py first"
    key = ApiKey.objects.filter(tenant=big).order_by("pk").first()
    assert key is not None
    newest = LedgerEntry.objects.order_by("-created_at").values_list("pk", "request_id", "created_at").first()
    adjustments = LedgerEntry.objects.filter(kind="adjustment").order_by("-created_at")
    adjusted = adjustments.values_list("adjusts_id", flat=True)
    assert newest is not None
    original = LedgerEntry.objects.filter(request_id=adjusted.first()).values_list("pk", flat=True).first()
    week, month = days_ago(newest[2], 7), days_ago(newest[2], 31)
    deep = DeepPage(client, ledger, depth=5)
    return [
        ("ledger: last 24 h", lambda: ledger),
        ("ledger: last 7 days", lambda: f"{ledger}?since={week}"),
        ("ledger: last 31 days", lambda: f"{ledger}?since={month}"),
        ("ledger: 5 pages older (cursor)", deep.url),
        ("ledger: big tenant, 31 days", lambda: f"{ledger}?since={month}&tenant__id__exact={big.pk}"),
        ("ledger: small tenant, 31 days", lambda: f"{ledger}?since={month}&tenant__id__exact={small.pk}"),
        ("ledger: one key, 31 days", lambda: f"{ledger}?since={month}&api_key__id__exact={key.pk}"),
        ("ledger: status error, 24 h", lambda: f"{ledger}?status=error"),
        ("ledger: status error, 31 days", lambda: f"{ledger}?since={month}&status=error"),
        ("ledger: provider vllm (1 %), 31 days", lambda: f"{ledger}?since={month}&provider=vllm"),
        ("ledger: model claude-haiku, 7 days", lambda: f"{ledger}?since={week}&model=claude-haiku"),
        ("ledger: cache hit-l2, 7 days", lambda: f"{ledger}?since={week}&cache_status=hit-l2"),
        ("ledger: adjustments, 31 days", lambda: f"{ledger}?since={month}&kind=adjustment"),
        ("ledger: no such model, 31 days", lambda: f"{ledger}?since={month}&model=no-such-model"),
        ("ledger: search a request id", lambda: f"{ledger}?q={newest[1]}"),
        ("ledger: entry detail", lambda: f"{ledger}{newest[0]}/change/"),
        ("ledger: adjusted entry detail", lambda: f"{ledger}{original}/change/"),
        ("tenants: list", lambda: "/admin/billing/tenant/"),
        ("tenants: big tenant (budget)", lambda: f"/admin/billing/tenant/{big.pk}/change/"),
        ("keys: list", lambda: "/admin/billing/apikey/"),
        ("keys: list of big tenant", lambda: f"/admin/billing/apikey/?tenant__id__exact={big.pk}"),
        ("keys: busiest key (budget)", lambda: f"/admin/billing/apikey/{key.pk}/change/"),
        ("admin index", lambda: "/admin/"),
        *report_pages(big.pk, first=newest[2] - timedelta(days=91), last=newest[2]),
    ]


def report_pages(tenant_id: int, *, first: datetime, last: datetime) -> list[tuple[str, Callable[[], str]]]:
    """The cost report pages (apps.billing.reports), over the whole loaded span and over a month."""
    reports, tenant = "/admin/billing/tenant/reports/", f"/admin/billing/tenant/{tenant_id}/report/"
    span = f"start={first:%Y-%m-%d}&end={last:%Y-%m-%d}"
    return [
        ("reports: every tenant, this month", lambda: reports),
        ("reports: every tenant, 92 days by tenant", lambda: f"{reports}?{span}&period=day&group=tenant"),
        ("reports: every tenant, 92 days by model", lambda: f"{reports}?{span}&period=week&group=model"),
        ("reports: big tenant, 92 days by key", lambda: f"{tenant}?{span}&period=day&group=key"),
        ("reports: big tenant, 92 days by provider", lambda: f"{tenant}?{span}&period=month&group=provider"),
        ("reports: big tenant, CSV of its keys", lambda: f"{tenant}?{span}&group=key&export=keys"),
        ("reports: big tenant, FOCUS export of a month",
         lambda: f"/admin/billing/tenant/{tenant_id}/focus/?month={last:%Y-%m}"),
    ]


class DeepPage:
    """The ledger list ``depth`` pages back, following each page's "older" link (fetched untimed)."""

    def __init__(self, client: Client, start: str, *, depth: int) -> None:
        self.client, self.start, self.depth = client, start, depth
        self.found: str | None = None

    def url(self) -> str:
        if self.found is None:
            url = self.start
            for _ in range(self.depth):
                html = self.client.get(url).content.decode()
                link = re.search(r'<a href="([^"]+)" id="page-older">', html)
                assert link is not None, "fewer pages than asked for"
                url = self.start + link.group(1).replace("&amp;", "&")
            self.found = url
        return self.found


def days_ago(moment: datetime, days: int) -> str:
    return (moment - timedelta(days=days)).strftime("%Y-%m-%dT%H:00")


def time_page(client: Client, name: str, url_of: Callable[[], str], repeats: int) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = url_of()
    client.get(url)  # warm: the first read of an index comes from disk
    times, status = [], 0
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    sql = " ".join(query["sql"].upper() for query in captured.captured_queries)
    return Timing(name, statistics.median(times), max(times), len(captured.captured_queries),
                  "COUNT(" in sql or " OFFSET " in sql, status)


def print_table(timings: list[Timing], budget_ms: float) -> None:
    print(f"{'page':<40} {'median ms':>10} {'worst ms':>9} {'queries':>8}  COUNT/OFFSET  status")
    for timing in timings:
        mark = "" if timing.worst_ms <= budget_ms and timing.status == 200 else "  <-- over budget or failed"
        print(f"{timing.name:<40} {timing.median_ms:>10.1f} {timing.worst_ms:>9.1f} {timing.queries:>8}  "
              f"{'yes' if timing.count_or_offset else 'no':<12}  {timing.status}{mark}")


if __name__ == "__main__":
    sys.exit(main())
