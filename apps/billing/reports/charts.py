"""Charts drawn as SVG on the server: no script, no chart library, nothing fetched by the browser.

A chart is a picture of a table shown under it, so heights are floats here; the exact figures are in
the table (and each bar's tooltip). ``stacked_bars`` draws values per period stacked by series,
``bars_and_rate`` a count per period with a rate line on its own axis, ``ranked_bars`` one bar per
named item.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 80, 56, 16, 44
# Distinguishable, colour-blind-safe hues (Okabe-Ito order); "other" is grey.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
OTHER_COLOUR = "#999999"
RATE_COLOUR = "#D55E00"
MAX_SERIES = 7  # more than this are summed as "other"

Number = int | float | Decimal
Format = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[Number]  # one per period


def stacked_bars(title: str, periods: Sequence[str], series: Sequence[Series], fmt: Format) -> SafeString:
    series = _fold_other(series)
    top = max((sum(float(s.values[i]) for s in series if s.values[i] > 0) for i in range(len(periods))), default=0)
    scale = _Scale(top)
    bars = []
    for index in range(len(periods)):
        base = 0.0
        for number, item in enumerate(series):
            value = float(item.values[index])
            if value <= 0:
                continue  # credits are in the table; a stack shows what was spent
            bars.append(_bar(_slot(index, len(periods)), scale.y(base + value), scale.y(base), _colour(number, item),
                             f"{periods[index]} · {item.name}: {fmt(value)}"))
            base += value
    legend = [(item.name, _colour(number, item)) for number, item in enumerate(series)]
    return _svg(title, scale, fmt, periods, "".join(bars), legend)


def bars_and_rate(title: str, periods: Sequence[str], counts: Sequence[int], rates: Sequence[float | None],
                  count_name: str, rate_name: str) -> SafeString:
    scale = _Scale(max(counts, default=0))
    bars = "".join(
        _bar(_slot(i, len(periods)), scale.y(count), scale.y(0), PALETTE[0], f"{periods[i]} · {count_name}: {count:,}")
        for i, count in enumerate(counts)
    )
    top_rate = max((rate for rate in rates if rate is not None), default=0.0) or 1.0
    rate_top = _nice(top_rate)
    points = [(_slot(i, len(periods))[0] + _slot(i, len(periods))[1] / 2, _rate_y(rate, rate_top))
              for i, rate in enumerate(rates) if rate is not None]
    line = format_html('<polyline class="rate" fill="none" stroke="{}" stroke-width="2" points="{}"/>', RATE_COLOUR,
                       " ".join(f"{_n(x)},{_n(y)}" for x, y in points)) if points else ""
    dots = format_html_join("", '<circle cx="{}" cy="{}" r="3" fill="{}"><title>{}</title></circle>',
                            ((_n(x), _n(y), RATE_COLOUR, f"{rate_name}: {rate:.2%}") for (x, y), rate in
                             zip(points, [r for r in rates if r is not None], strict=True)))
    right_axis = format_html_join("", '<text x="{}" y="{}" class="tick" text-anchor="start">{}</text>',
                                  ((WIDTH - RIGHT + 6, _n(_rate_y(rate_top * k / 4, rate_top) + 4),
                                    f"{rate_top * k / 4:.1%}") for k in range(5)))
    legend = [(count_name, PALETTE[0]), (rate_name + " (right axis)", RATE_COLOUR)]
    return _svg(title, scale, lambda v: f"{v:,.0f}", periods, bars + line + dots + right_axis, legend)


def ranked_bars(title: str, names: Sequence[str], values: Sequence[Number], fmt: Format) -> SafeString:
    """Horizontal bars, biggest first, each labelled with its name and value."""
    row, height = 24, max(len(names), 1) * 24 + TOP + 8
    top = max((float(value) for value in values), default=0.0) or 1.0
    span = WIDTH - 360 - RIGHT
    bars = format_html_join("", (
        '<text x="{}" y="{}" class="label" text-anchor="end">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="16" fill="{}"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}" class="tick">{}</text>'),
        ((350, TOP + i * row + 12, _clip(name, 48), 356, TOP + i * row, _n(max(float(v), 0) / top * span), PALETTE[0],
          name, fmt(float(v)), _n(360 + max(float(v), 0) / top * span), TOP + i * row + 12, fmt(float(v)))
         for i, (name, v) in enumerate(zip(names, values, strict=True))))
    return format_html('<svg class="chart" role="img" viewBox="0 0 {} {}" width="100%" aria-label="{}">'
                       '<title>{}</title>{}{}</svg>', WIDTH, height, title, title, _style(), bars)


class _Scale:
    """Values 0..top onto the plot's height, top rounded up to a readable number."""

    def __init__(self, top: Number) -> None:
        self.top = _nice(float(top)) or 1.0

    def y(self, value: Number) -> float:
        return TOP + (1 - float(value) / self.top) * (HEIGHT - TOP - BOTTOM)

    def ticks(self) -> list[float]:
        return [self.top * k / 4 for k in range(5)]


def _svg(title: str, scale: _Scale, fmt: Format, periods: Sequence[str], body: str,
         legend: Sequence[tuple[str, str]]) -> SafeString:
    grid = format_html_join("", (
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"/>'
        '<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>'),
        ((LEFT, WIDTH - RIGHT, _n(scale.y(t)), _n(scale.y(t)), LEFT - 6, _n(scale.y(t) + 4), fmt(t))
         for t in scale.ticks()))
    every = max(1, math.ceil(len(periods) / 16))  # at most 16 labels fit under the axis
    labels = format_html_join("", '<text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>', (
        (_n(_slot(i, len(periods))[0] + _slot(i, len(periods))[1] / 2), HEIGHT - BOTTOM + 16, label)
        for i, label in enumerate(periods) if i % every == 0))
    keys = format_html_join("", '<rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
                                '<text x="{}" y="{}" class="label">{}</text>',
                            ((LEFT + i * 150, HEIGHT - 16, colour, LEFT + i * 150 + 14, HEIGHT - 7, _clip(name, 20))
                             for i, (name, colour) in enumerate(legend)))
    return format_html(
        '<svg class="chart" role="img" viewBox="0 0 {} {}" width="100%" aria-label="{}"><title>{}</title>'
        '{}{}{}{}{}</svg>', WIDTH, HEIGHT, title, title, _style(), grid,
        mark_safe(body), labels, keys,  # body: made of format_html pieces
    )


def _style() -> SafeString:
    return mark_safe(
        "<style>.grid{stroke:#ddd;stroke-width:1}.tick{font:11px sans-serif;fill:#555}"
        ".label{font:12px sans-serif;fill:#333}</style>"
    )


def _bar(slot: tuple[float, float], y_top: float, y_bottom: float, colour: str, tip: str) -> str:
    x, width = slot
    return format_html('<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
                       _n(x + width * 0.1), _n(y_top), _n(width * 0.8), _n(max(y_bottom - y_top, 0)), colour, tip)


def _n(value: float) -> str:
    """A coordinate, to a tenth of a pixel (format_html would escape a float before formatting it)."""
    return f"{value:.1f}"


def _slot(index: int, count: int) -> tuple[float, float]:
    width = (WIDTH - LEFT - RIGHT) / max(count, 1)
    return LEFT + index * width, width


def _rate_y(rate: float, top: float) -> float:
    return TOP + (1 - rate / top) * (HEIGHT - TOP - BOTTOM)


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n at or above ``value``, so ticks at quarters read well."""
    if value <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 2.5, 4, 5, 10) if step * power >= value * 0.999999))


def _fold_other(series: Sequence[Series]) -> list[Series]:
    if len(series) <= MAX_SERIES:
        return list(series)
    kept, rest = list(series[:MAX_SERIES - 1]), series[MAX_SERIES - 1:]
    other = [sum((Decimal(str(s.values[i])) for s in rest), Decimal(0)) for i in range(len(series[0].values))]
    return [*kept, Series("other", other)]


def _colour(number: int, item: Series) -> str:
    return OTHER_COLOUR if item.name == "other" and number == MAX_SERIES - 1 else PALETTE[number % len(PALETTE)]


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
