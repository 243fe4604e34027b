"""The dashboard's charts as geometry that a template draws as SVG: bars (stacked by series) and
lines, with axis ticks and a legend. No script draws them and every number they show is also in a
text table on the page (for screen readers, and for copying). Nothing here reads the store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["Chart", "bar_chart", "line_chart"]

WIDTH, HEIGHT = 640, 190
LEFT, RIGHT, TOP, BOTTOM = 72, 8, 10, 26
#: The colour classes of the series, in order (``.s0`` … in app.css); more series share the last.
SERIES_CLASSES = ("s0", "s1", "s2", "s3", "s4", "s5", "s6")


@dataclass(slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


@dataclass(slots=True)
class Line:
    points: str
    css: str
    dots: list[tuple[float, float, str]]


@dataclass(slots=True)
class Chart:
    """One chart: its title, size, bars or lines, ticks ``(position, label)`` and legend."""

    title: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    empty: bool = False
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_bottom: int = HEIGHT - BOTTOM


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    if value < 1:
        magnitude = 1.0
        while magnitude / 10 >= value:
            magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _x_ticks(starts: Sequence[datetime], width: timedelta, slot: float) -> list[tuple[float, str]]:
    if not starts:
        return []
    fmt = "%m-%d" if width >= timedelta(days=1) else "%H:%M"
    if width < timedelta(days=1) and starts[-1] - starts[0] >= timedelta(days=1):
        fmt = "%m-%d %H:%M"
    every = max(1, len(starts) // 6)
    return [(LEFT + slot * (i + 0.5), s.strftime(fmt)) for i, s in enumerate(starts) if i % every == 0]


def _frame(chart: Chart, top: float, fmt: Callable[[float], str]) -> float:
    """Adds the y ticks; returns the plot's height in pixels."""
    plot_h = HEIGHT - TOP - BOTTOM
    chart.y_ticks = [(TOP + plot_h * (1 - f), fmt(top * f)) for f in (0, 0.5, 1)]
    return plot_h


def bar_chart(
    title: str,
    starts: Sequence[datetime],
    width: timedelta,
    series: Sequence[tuple[str, Sequence[float]]],
    fmt: Callable[[float], str],
) -> Chart:
    """Bars per bucket, the series stacked in order."""
    chart = Chart(title)
    totals = [sum(values[i] for _, values in series) for i in range(len(starts))]
    top = _nice_max(max(totals, default=0))
    chart.empty = not any(totals)
    plot_h = _frame(chart, top, fmt)
    slot = (WIDTH - LEFT - RIGHT) / max(len(starts), 1)
    for i, start in enumerate(starts):
        base = TOP + plot_h
        for n, (name, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            h = plot_h * value / top
            css = SERIES_CLASSES[min(n, len(SERIES_CLASSES) - 1)]
            label = f"{start:%Y-%m-%d %H:%M} · {name}: {fmt(value)}"
            chart.bars.append(Bar(LEFT + slot * i + slot * 0.15, base - h, slot * 0.7, h, css, label))
            base -= h
    chart.x_ticks = _x_ticks(starts, width, slot)
    if len(series) > 1:
        chart.legend = [(SERIES_CLASSES[min(n, 6)], name) for n, (name, _) in enumerate(series)]
    return chart


def line_chart(
    title: str,
    starts: Sequence[datetime],
    width: timedelta,
    series: Sequence[tuple[str, Sequence[float | None]]],
    fmt: Callable[[float], str],
) -> Chart:
    """One line per series over the buckets (a bucket without a value leaves a gap)."""
    chart = Chart(title)
    values = [v for _, vs in series for v in vs if v is not None]
    top = _nice_max(max(values, default=0))
    chart.empty = not values
    plot_h = _frame(chart, top, fmt)
    slot = (WIDTH - LEFT - RIGHT) / max(len(starts), 1)
    for n, (name, points) in enumerate(series):
        css = SERIES_CLASSES[min(n, len(SERIES_CLASSES) - 1)]
        coords = [
            (
                LEFT + slot * (i + 0.5),
                TOP + plot_h * (1 - v / top),
                f"{starts[i]:%Y-%m-%d %H:%M} · {name}: {fmt(v)}",
            )
            for i, v in enumerate(points)
            if v is not None
        ]
        chart.lines.append(Line(" ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords), css, coords))
    chart.x_ticks = _x_ticks(starts, width, slot)
    chart.legend = [(SERIES_CLASSES[min(n, 6)], name) for n, (name, _) in enumerate(series)]
    return chart
