"""Ledger rows as CSV, streamed in constant memory with every amount written exactly.

The rows come from an async generator reading the ledger in keyset-paginated chunks: Django under
ASGI would read a synchronous iterator to the end before sending a byte, and OFFSET pagination
slows down the further into a big ledger it gets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from apps.billing.models import LedgerEntry

CHUNK_ROWS = 2000

# (CSV header, queryset lookup); created_at and pk go last, they are also the pagination key.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("created_at", "created_at"),
    ("request_id", "request_id"),
    ("kind", "kind"),
    ("adjusts", "adjusts_id"),
    ("tenant", "tenant__slug"),
    ("key_prefix", "api_key__prefix"),
    ("endpoint", "endpoint"),
    ("public_model", "public_model"),
    ("provider", "provider"),
    ("upstream_model", "upstream_model"),
    ("stream", "stream"),
    ("status", "status"),
    ("http_status", "http_status"),
    ("error_type", "error_type"),
    ("prompt_tokens", "prompt_tokens"),
    ("completion_tokens", "completion_tokens"),
    ("cached_tokens", "cached_tokens"),
    ("usage_source", "usage_source"),
    ("input_usd_per_mtok", "input_usd_per_mtok"),
    ("output_usd_per_mtok", "output_usd_per_mtok"),
    ("cached_input_usd_per_mtok", "cached_input_usd_per_mtok"),
    ("cost_usd", "cost_usd"),
    ("latency_ms", "latency_ms"),
    ("ttft_ms", "ttft_ms"),
    ("note", "note"),
    ("cache_status", "cache_status"),
    ("cost_avoided_usd", "cost_avoided_usd"),
    ("cache_write_tokens", "cache_write_tokens"),
    ("cache_write_usd_per_mtok", "cache_write_usd_per_mtok"),
)
HEADER = [name for name, _ in COLUMNS]
LOOKUPS = [lookup for _, lookup in COLUMNS]

# A spreadsheet runs a cell starting with these as a formula; model names and notes come from users.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def ledger_csv_response(queryset: QuerySet[LedgerEntry]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(ledger_csv_chunks(queryset), content_type="text/csv; charset=utf-8")
    filename = f"ledger-{timezone.now():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


async def ledger_csv_chunks(queryset: QuerySet[LedgerEntry]) -> AsyncIterator[str]:
    """The header, then the rows newest first, ``CHUNK_ROWS`` at a time."""
    yield csv_lines([HEADER])
    after: tuple[datetime, int] | None = None
    while True:
        rows = await sync_to_async(fetch_chunk)(queryset, after)
        if not rows:
            return
        yield csv_lines([[cell(value) for value in row[:-1]] for row in rows])
        after = (rows[-1][0], rows[-1][-1])


def fetch_chunk(queryset: QuerySet[LedgerEntry], after: tuple[datetime, int] | None) -> list[tuple[Any, ...]]:
    page = queryset.order_by("-created_at", "-pk")
    if after is not None:
        created_at, pk = after
        page = page.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk))
    return list(page.values_list(*LOOKUPS, "pk")[:CHUNK_ROWS])


def csv_lines(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")  # str() would give "0E-10" for a zero with ten places
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text
