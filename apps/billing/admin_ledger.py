"""The ledger's admin list for a ledger of tens of millions of rows: pages by cursor inside a time range.

Django's changelist counts the matching rows (``COUNT(*)``) and pages with OFFSET; its date
hierarchy lists the years and months present (``SELECT DISTINCT`` over the ledger); its totals
summed the ledger. Each reads every matching row on every view. Here instead:

- ``CreatedRangeFilter`` bounds the rows to a range of whole hours (``since``/``until``, default the
  last 24 hours, at most 31 days); a search for a request id ignores the default (the unique index
  answers it from any date);
- ``LedgerChangeList`` shows the page after a cursor (``older``/``newer``: created_at and id) with
  one ``LIMIT size + 1`` query (apps.billing.ledger_pages), bounded to the days where the daily
  rollups count that many matching rows, or skipped when they count none (apps.billing.ledger_bounds);
- the totals line sums the hourly and daily rollups of the range, by the filters the rollups have
  (tenant, key, provider, model); with others active (status, kind, cache, a search) it says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.billing.ledger_bounds import Bound, counter_columns, page_bound
from apps.billing.ledger_pages import (
    Direction,
    Page,
    TimeRange,
    Totals,
    ceil_hour,
    decode_cursor,
    floor_hour,
    ledger_page,
    rollup_totals,
    time_range,
)

CURSOR_PARAMS: tuple[Direction, ...] = ("older", "newer")
# List filter parameter → rollup column: the filters whose totals the rollups know.
ROLLUP_DIMENSIONS = {
    "tenant__id__exact": "tenant_id", "api_key__id__exact": "api_key_id", "provider": "provider",
    "model": "public_model",
}


class CreatedRangeFilter(admin.ListFilter):
    title = "time (UTC)"
    template = "admin/billing/ledgerentry/range_filter.html"
    parameters = ("since", "until")
    PRESETS = (("Last 24 hours", None), ("Last 7 days", 7), ("Last 31 days", 31))

    def __init__(self, request: HttpRequest, params: dict[str, list[str]], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.asked: dict[str, str] = {name: params.pop(name)[-1] for name in self.parameters if name in params}
        self.used_parameters.update(self.asked)
        self.now = timezone.now()
        self.searching = bool(request.GET.get("q", "").strip())
        try:
            self.span = time_range(self.asked.get("since"), self.asked.get("until"), now=self.now)
        except ValueError as exc:
            raise IncorrectLookupParameters(str(exc)) from exc

    @property
    def explicit(self) -> bool:
        return bool(self.asked)

    def applies(self) -> bool:
        """A search for one request id looks at every date unless a range is asked for."""
        return self.explicit or not self.searching

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return list(self.parameters)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.applies():
            return queryset
        rows = queryset.filter(created_at__gte=self.span.start)
        return rows if self.span.end is None else rows.filter(created_at__lt=self.span.end)

    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
        for label, days in self.PRESETS:
            since = None if days is None else floor_hour(self.now).replace(tzinfo=None) - timedelta(days=days)
            changes = {} if since is None else {"since": since.isoformat(timespec="minutes")}
            yield {
                "display": label,
                "selected": (not self.explicit and days is None) or self.asked == changes,
                "query_string": changelist.get_query_string(changes, [*self.parameters, *CURSOR_PARAMS]),
            }

    def form_fields(self) -> list[tuple[str, str]]:
        """The page's other parameters (filters, search), kept by the custom-range form as hidden fields;
        the cursor is left out: a new range starts at its newest page."""
        return [(name, str(value)) for name, value in self.request.GET.items()
                if name not in (*self.parameters, *CURSOR_PARAMS)]


class LedgerChangeList(ChangeList):
    """One page after a cursor, without counting; see the module docstring."""

    page: Page
    span: TimeRange | None
    applied: dict[str, Any]

    def get_filters(self, request: HttpRequest) -> Any:
        found = super().get_filters(request)
        # What the rows are filtered by: the shown filters' parameters (a filter Django hides, one with a
        # single choice, drops its parameter) and the plain lookups no filter took.
        chosen = {name: value for spec in found[0] for name, value in spec.used_parameters.items()}
        self.applied = {name: value[-1] if isinstance(value, list) else value
                        for name, value in {**chosen, **found[2]}.items()
                        if name not in CreatedRangeFilter.parameters}
        return found

    def get_filters_params(self, params: Any = None) -> Any:
        lookup = super().get_filters_params(params)
        for name in CURSOR_PARAMS:
            lookup.pop(name, None)
        return lookup

    def get_results(self, request: HttpRequest) -> None:
        direction: Direction = "newer" if "newer" in self.params else "older"
        range_filter = self.range_filter()
        self.span = range_filter.span if range_filter is not None and range_filter.applies() else None
        try:
            self.page = self.read_page(direction, self.params.get(direction))
        except (ValueError, OverflowError) as exc:  # a cursor mangled by hand
            raise IncorrectLookupParameters(str(exc)) from exc
        self.result_list = self.page.rows  # a list is all the templates iterate
        self.result_count = len(self.page.rows)
        # Equal, so the search bar prints no "N results": N would be this page's rows, not the matches.
        self.full_result_count = self.result_count
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.can_show_all = False
        self.multi_page = self.page.older is not None or self.page.newer is not None
        self.paginator = None  # nothing pages by number here

    def read_page(self, direction: Direction, cursor: str | None) -> Page:
        """The page, its query bounded by what the daily rollups count (apps.billing.ledger_bounds)."""
        bound = self.rollup_bound(direction, cursor)
        if bound is not None and bound.empty:
            return Page([], None, None)
        rows = self.queryset
        if bound is not None and bound.start is not None:
            rows = rows.filter(created_at__gte=bound.start)
        if bound is not None and bound.end is not None:
            rows = rows.filter(created_at__lt=bound.end)
        page = ledger_page(rows, size=self.list_per_page, cursor=cursor, direction=direction)
        if bound is not None and bound.counted and len(page.rows) < self.list_per_page:  # the rollups drifted
            page = ledger_page(self.queryset, size=self.list_per_page, cursor=cursor, direction=direction)
        return page

    def rollup_bound(self, direction: Direction, cursor: str | None) -> Bound | None:
        """None when a filter the rollups do not count is active (or a search is)."""
        if self.span is None:
            return None
        dimensions: dict[str, Any] = {}
        chosen: dict[str, str | None] = {"status": None, "kind": None}
        for name, value in self.active_filters().items():
            if name in ROLLUP_DIMENSIONS:
                dimensions[ROLLUP_DIMENSIONS[name]] = value
            elif name.removesuffix("__exact") in chosen:
                chosen[name.removesuffix("__exact")] = value
            else:
                return None
        now = timezone.now()
        end = self.span.end or ceil_hour(now) + timedelta(hours=1)
        edge = decode_cursor(cursor)[0] if cursor else (end if direction == "older" else self.span.start)
        return page_bound(dimensions=dimensions, columns=counter_columns(**chosen), start=self.span.start,
                          end=end, edge=edge, direction=direction, size=self.list_per_page)

    def active_filters(self) -> dict[str, Any]:
        """The filters applied to the rows (the time range left out), each with its value."""
        return self.applied

    def range_filter(self) -> CreatedRangeFilter | None:
        return next((spec for spec in self.filter_specs if isinstance(spec, CreatedRangeFilter)), None)

    def cursor_link(self, direction: Direction) -> str | None:
        cursor = getattr(self.page, direction)
        return None if cursor is None else self.get_query_string({direction: cursor}, list(CURSOR_PARAMS))

    def totals(self) -> Totals | None:
        """The range's sums from the rollups, or None when a filter the rollups cannot split by is active."""
        if self.span is None:
            return None
        filters = self.active_filters()
        if any(name not in ROLLUP_DIMENSIONS for name in filters):
            return None
        return rollup_totals(self.span, now=timezone.now(),
                             **{ROLLUP_DIMENSIONS[name]: value for name, value in filters.items()})


def totals_context(changelist: LedgerChangeList) -> dict[str, Any]:
    totals = changelist.totals()
    return {
        "ledger_range": changelist.span.label() if changelist.span is not None else "every date (a search)",
        "range_clamped": changelist.span is not None and changelist.span.clamped,
        "totals": totals,
        "filtered_cost": format(totals.spend_usd, "f") if totals else None,
        "filtered_cost_avoided": format(totals.cost_avoided_usd, "f") if totals else None,
        "older_link": changelist.cursor_link("older"),
        "newer_link": changelist.cursor_link("newer"),
    }
