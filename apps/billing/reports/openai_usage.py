"""OpenAI's organization usage and cost APIs, answered from the rollups for one tenant.

``GET /v1/organization/costs`` and ``/v1/organization/usage/{completions,embeddings}`` take OpenAI's
parameters and answer in OpenAI's page of buckets. Mapping onto the gateway:

- the organization is the calling key's tenant; OpenAI's projects have no counterpart, so every
  result belongs to one project, whose ``project_id`` is the tenant's slug;
- ``api_key_id`` is a key's display prefix (``sk-edge-AbCd1234``), as admin and ``edge_key list``
  show it; ``user_id`` is always null and ``batch`` always false (the gateway has neither);
- completions are the chat completions, completions, messages and responses endpoints;
  ``num_model_requests`` counts every request the gateway recorded (answered, failed, cancelled);
- a cost ``line_item`` is a model and meter, ``"<model>, input_tokens"`` (also ``cached_input_tokens``,
  ``cache_write_tokens``, ``output_tokens``), with its tokens as ``quantity``; credits and charges made
  later are ``"<model>, adjustments"``;
- buckets are UTC days (``1d``) or hours (``1h``); the range is widened to whole buckets, the grain
  of the rollups. ``1m`` is refused: no per-minute totals are kept;
- ``amount.value`` is a JSON number written with every stored digit (up to 10 decimal places, never
  a rounded float); parse it as a decimal (``json.loads(body, parse_float=Decimal)``) to keep them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum
from django.utils import timezone

from apps.billing.models import ApiKey, DailyRollup, HourlyRollup, Tenant
from apps.billing.reports.measures import SUMMED, Measures
from apps.providers.errors import OpenAIError

COMPLETION_ENDPOINTS = ("chat.completions", "completions", "messages", "responses")
WIDTHS = {"1d": timedelta(days=1), "1h": timedelta(hours=1)}
# (default, max) buckets per page, as OpenAI documents them.
LIMITS = {("costs", "1d"): (7, 180), ("costs", "1h"): (24, 168), ("usage", "1d"): (7, 31), ("usage", "1h"): (24, 168)}
GROUPS = {
    "costs": ("project_id", "line_item", "api_key_id"),
    "completions": ("project_id", "api_key_id", "model", "batch"),
    "embeddings": ("project_id", "api_key_id", "model"),
}
METERS = (("input_tokens", "input_cost_usd"), ("cached_input_tokens", "cached_input_cost_usd"),
          ("cache_write_tokens", "cache_write_cost_usd"), ("output_tokens", "output_cost_usd"))


class BadParameter(OpenAIError):
    status = 400
    type = "invalid_request_error"


@dataclass(frozen=True, slots=True)
class UsageQuery:
    kind: str  # costs, completions or embeddings
    tenant_id: int
    start: datetime  # the first bucket's start (this page's)
    end: datetime  # exclusive
    width: timedelta
    limit: int
    group_by: tuple[str, ...]
    api_key_ids: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    project_ids: tuple[str, ...] = ()
    line_items: tuple[str, ...] = ()
    batch: bool | None = None


def parse_query(kind: str, tenant_id: int, params: Mapping[str, Sequence[str]]) -> UsageQuery:
    """OpenAI's query parameters (``group_by=a&group_by=b``, ``group_by[]=a`` or ``group_by=a,b``)."""
    width_name = _one(params, "bucket_width") or "1d"
    if width_name not in WIDTHS:
        raise BadParameter(f"bucket_width {width_name!r} is not supported here: use 1d or 1h (the gateway keeps "
                           "hourly totals, not per-minute ones).", param="bucket_width")
    width = WIDTHS[width_name]
    start = _time(params, "start_time")
    if start is None:
        raise BadParameter("Missing required parameter: 'start_time' (Unix seconds).", param="start_time")
    end = _time(params, "end_time") or timezone.now()
    if end <= start:
        raise BadParameter("end_time must be after start_time.", param="end_time")
    start = _floor(start, width)
    page = _one(params, "page")
    if page:
        start = _page_start(page, start, end, width)
    default, most = LIMITS[("costs" if kind == "costs" else "usage", width_name)]
    limit = _int(params, "limit", default)
    if not 1 <= limit <= most:
        raise BadParameter(f"limit must be between 1 and {most} for bucket_width {width_name}.", param="limit")
    group_by = _many(params, "group_by")
    unknown = [name for name in group_by if name not in GROUPS[kind]]
    if unknown:
        raise BadParameter(f"Cannot group by {', '.join(unknown)} here; choose from {', '.join(GROUPS[kind])}.",
                           param="group_by")
    batch = _one(params, "batch")
    return UsageQuery(kind=kind, tenant_id=tenant_id, start=start, end=end, width=width, limit=limit,
                      group_by=tuple(dict.fromkeys(group_by)), api_key_ids=_many(params, "api_key_ids"),
                      models=_many(params, "models"), project_ids=_many(params, "project_ids"),
                      line_items=_many(params, "line_items"),
                      batch=None if batch in (None, "") else batch.lower() == "true")


def usage_page(query: UsageQuery) -> dict[str, Any]:
    """The page of buckets, each with its results, as OpenAI shapes it."""
    starts = _bucket_starts(query)
    page_end = starts[-1] + query.width
    slug = Tenant.objects.only("slug").get(pk=query.tenant_id).slug
    by_bucket: dict[datetime, list[dict[str, Any]]] = {start: [] for start in starts}
    for row in _rows(query, slug, starts[0], min(page_end, _ceil(query.end, query.width))):
        by_bucket[row["bucket"]].append(row)
    prefixes = dict(ApiKey.objects.filter(tenant_id=query.tenant_id).values_list("pk", "prefix"))
    results_of = _cost_results if query.kind == "costs" else _usage_results
    buckets = []
    for start, in_bucket in by_bucket.items():
        buckets.append({"object": "bucket", "start_time": _unix(start), "end_time": _unix(start + query.width),
                        "results": results_of(query, in_bucket, slug, prefixes)})
    has_more = page_end < query.end
    return {"object": "page", "data": buckets, "has_more": has_more,
            "next_page": _cursor(page_end) if has_more else None}


def _rows(query: UsageQuery, slug: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    if (query.project_ids and slug not in query.project_ids) or query.batch is True:
        return []  # another project's, or batch jobs only: the gateway has neither
    model = DailyRollup if query.width == WIDTHS["1d"] else HourlyRollup
    rows: QuerySet[Any] = model.objects.filter(tenant_id=query.tenant_id, bucket__gte=start, bucket__lt=end)
    if query.kind == "completions":
        rows = rows.filter(endpoint__in=COMPLETION_ENDPOINTS)
    elif query.kind == "embeddings":
        rows = rows.filter(endpoint="embeddings")
    if query.models:
        rows = rows.filter(public_model__in=query.models)
    if query.api_key_ids:
        rows = rows.filter(api_key_id__in=ApiKey.objects.filter(tenant_id=query.tenant_id,
                                                                prefix__in=query.api_key_ids).values("pk"))
    columns = ["bucket", *(_COLUMN[name] for name in query.group_by if name in _COLUMN)]
    if query.kind == "costs" and "line_item" in query.group_by:
        columns.append("public_model")
    return list(rows.values(*columns).annotate(**{name: Sum(name) for name in SUMMED}).order_by(*columns))


_COLUMN = {"api_key_id": "api_key_id", "model": "public_model"}


def _usage_results(query: UsageQuery, rows: list[dict[str, Any]], slug: str,
                   prefixes: dict[int, str]) -> list[dict[str, Any]]:
    results = []
    for row in rows:
        m = Measures.from_values(row)
        dims = _dimensions(query, row, slug, prefixes)
        if query.kind == "embeddings":
            results.append({"object": "organization.usage.embeddings.result", "input_tokens": m.prompt_tokens,
                            "num_model_requests": m.requests, **dims})
            continue
        results.append({
            "object": "organization.usage.completions.result", "input_tokens": m.prompt_tokens,
            "output_tokens": m.completion_tokens, "input_cached_tokens": m.cached_tokens,
            "input_cache_write_tokens": m.cache_write_tokens,
            "input_uncached_tokens": m.prompt_tokens - m.cached_tokens - m.cache_write_tokens,
            "input_audio_tokens": 0, "output_audio_tokens": 0, "num_model_requests": m.requests, **dims,
            "batch": False if "batch" in query.group_by else None,
        })
    return [r for r in results if r["num_model_requests"] or r["input_tokens"]]


def _cost_results(query: UsageQuery, rows: list[dict[str, Any]], slug: str,
                  prefixes: dict[int, str]) -> list[dict[str, Any]]:
    results = []
    for row in rows:
        m, dims = Measures.from_values(row), _dimensions(query, row, slug, prefixes)
        base = {"object": "organization.costs.result", "project_id": dims["project_id"],
                "api_key_id": dims["api_key_id"], "user_id": None}
        if "line_item" not in query.group_by:
            results.append({**base, "amount": _amount(m.spend_usd), "line_item": None})
            continue
        for item, quantity, amount in _line_items(row["public_model"], m):
            if not query.line_items or item in query.line_items:
                results.append({**base, "amount": _amount(amount), "line_item": item, "quantity": quantity,
                                "quantity_unit": "tokens" if quantity is not None else None})
    return results


def _line_items(model: str, m: Measures) -> list[tuple[str, int | None, Decimal]]:
    tokens = {"input_tokens": m.prompt_tokens - m.cached_tokens - m.cache_write_tokens,
              "cached_input_tokens": m.cached_tokens, "cache_write_tokens": m.cache_write_tokens,
              "output_tokens": m.completion_tokens}
    items: list[tuple[str, int | None, Decimal]] = [
        (f"{model}, {meter}", tokens[meter], getattr(m, cost)) for meter, cost in METERS
        if tokens[meter] or getattr(m, cost)
    ]
    if m.adjustments or m.adjustment_usd:
        items.append((f"{model}, adjustments", None, m.adjustment_usd))
    return items


def _dimensions(query: UsageQuery, row: dict[str, Any], slug: str, prefixes: dict[int, str]) -> dict[str, Any]:
    key = row.get("api_key_id")
    return {
        "project_id": slug if "project_id" in query.group_by else None, "user_id": None,
        "api_key_id": prefixes.get(key) if "api_key_id" in query.group_by and key else None,
        **({} if query.kind == "costs" else {"model": row.get("public_model") if "model" in query.group_by else None}),
    }


def _amount(value: Decimal) -> dict[str, Any]:
    return {"value": value, "currency": "usd"}  # the view writes the Decimal as an exact JSON number


def _bucket_starts(query: UsageQuery) -> list[datetime]:
    starts: list[datetime] = []
    start = query.start
    while start < query.end and len(starts) < query.limit:
        starts.append(start)
        start += query.width
    return starts


def _page_start(page: str, start: datetime, end: datetime, width: timedelta) -> datetime:
    try:
        moment = datetime.fromtimestamp(int(base64.urlsafe_b64decode(page.encode()).decode().removeprefix("b:")), UTC)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError, OSError):
        raise BadParameter("page is not a cursor from next_page.", param="page") from None
    if moment != _floor(moment, width) or not start <= moment < end:
        raise BadParameter("page is a cursor of another query.", param="page")
    return moment


def _cursor(moment: datetime) -> str:
    return base64.urlsafe_b64encode(f"b:{_unix(moment)}".encode()).decode()


def _floor(moment: datetime, width: timedelta) -> datetime:
    seconds = int(width.total_seconds())
    return datetime.fromtimestamp(_unix(moment) // seconds * seconds, UTC)


def _ceil(moment: datetime, width: timedelta) -> datetime:
    floored = _floor(moment, width)
    return floored if floored == moment else floored + width


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _time(params: Mapping[str, Sequence[str]], name: str) -> datetime | None:
    if not _one(params, name):
        return None
    value = _int(params, name, 0)
    if not 0 <= value < 2**33:
        raise BadParameter(f"{name} must be a time in Unix seconds.", param=name)
    return datetime.fromtimestamp(value, UTC)


def _int(params: Mapping[str, Sequence[str]], name: str, default: int) -> int:
    text = _one(params, name)
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise BadParameter(f"{name} must be an integer, not {text!r}.", param=name) from None


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name) or ()
    return values[-1] if values else None


def _many(params: Mapping[str, Sequence[str]], name: str) -> tuple[str, ...]:
    values = [*(params.get(name) or ()), *(params.get(f"{name}[]") or ())]
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())

