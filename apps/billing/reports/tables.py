"""The tables of a report page, each as its header and rows; the page and its CSV both read these, so
the CSV holds exactly what the page shows (amounts to every stored digit instead of to the cent)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.billing.reports.measures import Measures
from apps.billing.reports.query import Report, ReportRow, period_label

Cell = int | Decimal | str | float | None


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    value: Callable[[Measures], Cell]
    kind: str = "count"  # count, usd or rate


MEASURE_COLUMNS = (
    Column("requests", lambda m: m.requests),
    Column("errors", lambda m: m.requests_error),
    Column("error rate", lambda m: m.error_rate, "rate"),
    Column("input tokens", lambda m: m.prompt_tokens),
    Column("cached input tokens", lambda m: m.cached_tokens),
    Column("output tokens", lambda m: m.completion_tokens),
    Column("cache hits", lambda m: m.cache_hits),
    Column("request cost (USD)", lambda m: m.cost_usd, "usd"),
    Column("adjustments (USD)", lambda m: m.adjustment_usd, "usd"),
    Column("spend (USD)", lambda m: m.spend_usd, "usd"),
    Column("cache savings (USD)", lambda m: m.cost_avoided_usd, "usd"),
)
KEY_COLUMNS = tuple(c for c in MEASURE_COLUMNS if c.title in ("requests", "input tokens", "output tokens",
                                                              "spend (USD)"))


@dataclass(frozen=True, slots=True)
class Table:
    name: str  # also the CSV's ?export= value
    title: str
    labels: tuple[str, ...]  # the leading, non-measure columns
    columns: tuple[Column, ...]
    rows: Sequence[tuple[tuple[str, ...], Measures]]
    total: Measures

    @property
    def header(self) -> list[str]:
        return [*self.labels, *(column.title for column in self.columns)]


def tables(report: Report, group_title: str) -> dict[str, Table]:
    by_period = [((row.label,), row.measures) for row in report.periods]
    detail = [((_period(report, row), row.label), row.measures) for row in report.rows]
    keys = [((row.label,), row.measures) for row in report.top_keys]
    return {
        "periods": Table("periods", "Per period", ("period",), MEASURE_COLUMNS, by_period, report.total),
        "rows": Table("rows", f"Per period and {group_title}", ("period", group_title), MEASURE_COLUMNS, detail,
                      report.total),
        "keys": Table("keys", f"Top {len(keys)} keys by spend", ("key",), KEY_COLUMNS, keys,
                      _sum(measures for _, measures in keys)),
    }


def _period(report: Report, row: ReportRow) -> str:
    return period_label(row.period, report.query.period)


def _sum(rows: Any) -> Measures:
    total = Measures()
    for measures in rows:
        total.add(measures)
    return total
