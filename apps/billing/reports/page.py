"""The report page's form and what the page shows: charts, each above the table it is drawn from."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.http import HttpResponse
from django.utils import timezone
from django.utils.safestring import SafeString

from apps.billing.csv_export import cell
from apps.billing.models import Tenant, validate_timezone
from apps.billing.reports import charts
from apps.billing.reports.money import cents, exact, money_html
from apps.billing.reports.query import GROUPS, PERIODS, Report, ReportQuery, build_report
from apps.billing.reports.tables import Column, Table, tables

MAX_DAYS = 731  # two years of days: a bigger range is a FOCUS export's job, not a page's
GROUP_TITLES = {"model": "model", "provider": "provider", "key": "key", "endpoint": "endpoint", "tenant": "tenant"}


class ReportForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="Included.")
    period = forms.ChoiceField(choices=[(p, p) for p in PERIODS], initial="day", label="per")
    group = forms.ChoiceField(label="by")
    zone = forms.CharField(initial="UTC", label="time zone", validators=[validate_timezone],
                           help_text="Days start at midnight here (IANA name).")

    def __init__(self, data: Any, *, tenant: Tenant | None) -> None:
        zone = tenant.timezone if tenant else "UTC"
        today = timezone.now().astimezone(ZoneInfo(zone)).date()
        initial = {"start": today.replace(day=1), "end": today, "period": "day", "group": "model", "zone": zone}
        super().__init__({**initial, **{k: v for k, v in data.items() if v}})
        self.tenant = tenant
        groups = [g for g in GROUPS if tenant is None or g != "tenant"]
        self.fields["group"].choices = [(g, GROUP_TITLES[g]) for g in groups]  # type: ignore[attr-defined]
        if tenant is not None:  # a tenant's report is in its own time zone
            self.fields["zone"].disabled = True
            self.fields["zone"].help_text = "The tenant's time zone."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if isinstance(start, date) and isinstance(end, date):
            if end < start:
                raise forms.ValidationError("The end date is before the start date.")
            if (end - start).days >= MAX_DAYS:
                raise forms.ValidationError(f"Choose at most {MAX_DAYS} days; use the FOCUS export for more.")
        return data

    def initial_month(self) -> str:
        """The month the FOCUS form offers: the one the report ends in (UTC months)."""
        end = self.cleaned_data.get("end") if self.is_valid() else None
        return f"{end or timezone.now().date():%Y-%m}"

    def query(self) -> ReportQuery:
        data = self.cleaned_data
        zone = self.tenant.timezone if self.tenant else data["zone"]
        return ReportQuery(start=data["start"], end=data["end"], zone=ZoneInfo(zone), period=data["period"],
                           group=data["group"], tenant_id=self.tenant.pk if self.tenant else None)


def page_context(report: Report) -> dict[str, Any]:
    group_title = GROUP_TITLES[report.query.group]
    shown = tables(report, group_title)
    return {
        "charts": _charts(report, group_title),
        "tables": [_rendered(shown[name]) for name in ("periods", "rows", "keys")],
        "total_spend": money_html(report.total.spend_usd),
    }


def csv_response(report: Report, name: str, filename: str) -> HttpResponse:
    table = tables(report, GROUP_TITLES[report.query.group])[name]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.header)
    for labels, measures in table.rows:
        writer.writerow([*(cell(label) for label in labels), *(_csv_cell(c, measures) for c in table.columns)])
    writer.writerow(["total", *[""] * (len(table.labels) - 1), *(_csv_cell(c, table.total) for c in table.columns)])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{name}.csv"'
    return response


def run(form: ReportForm) -> Report:
    return build_report(form.query())


def _charts(report: Report, group_title: str) -> dict[str, SafeString]:
    periods = [row.label for row in report.periods]
    index = {row.key: number for number, row in enumerate(report.periods)}
    spend: dict[str, list[Any]] = {}
    for row in report.rows:  # the groups in order of their total spend, biggest at the bottom of a stack
        spend.setdefault(row.label, [0] * len(periods))[index[row.period]] += row.measures.spend_usd
    ranked = sorted(spend.items(), key=lambda item: -sum(item[1]))
    m = [row.measures for row in report.periods]
    return {
        "spend": charts.stacked_bars(f"Spend per {report.query.period} by {group_title} (USD)", periods,
                                     [charts.Series(name, values) for name, values in ranked], _usd_tick),
        "tokens": charts.stacked_bars("Tokens", periods, [
            charts.Series("input", [x.prompt_tokens for x in m]),
            charts.Series("output", [x.completion_tokens for x in m])], _count_tick),
        "requests": charts.bars_and_rate("Requests and error rate", periods, [x.requests for x in m],
                                         [x.error_rate for x in m], "requests", "error rate"),
        "savings": charts.stacked_bars("Cache savings (USD)", periods, [
            charts.Series("avoided by cache hits", [x.cost_avoided_usd for x in m])], _usd_tick),
        "keys": charts.ranked_bars("Top keys by spend (USD)", [row.label for row in report.top_keys],
                                   [row.measures.spend_usd for row in report.top_keys], _usd_tick),
    }


def _rendered(table: Table) -> dict[str, Any]:
    return {
        "name": table.name, "title": table.title, "header": table.header, "labels": table.labels,
        "rows": [[*labels, *(_html_cell(c, measures) for c in table.columns)] for labels, measures in table.rows],
        "total": ["total", *[""] * (len(table.labels) - 1), *(_html_cell(c, table.total) for c in table.columns)],
    }


def _html_cell(column: Column, measures: Any) -> Any:
    value = column.value(measures)
    if isinstance(value, Decimal):
        return money_html(value)
    if column.kind == "rate":
        return "–" if value is None else f"{value:.2%}"
    return f"{value:,}"


def _csv_cell(column: Column, measures: Any) -> str:
    value = column.value(measures)
    if isinstance(value, Decimal):
        return exact(value)
    if column.kind == "rate":
        return "" if value is None else f"{value:.6f}"
    return str(value)


def _usd_tick(value: float) -> str:
    return cents(Decimal(str(value))) if value >= 0.01 or value == 0 else f"${value:.4g}"


def _count_tick(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"
