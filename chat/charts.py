"""Server-rendered SVG charts of chat analytics: no script, no external resource, readable by screen readers.

Each chart is one `<svg role="img">` with a `<title>` and a `<desc>` summarising it, axis labels, and one bar
(sessions) or one point on a line (rates, sentiment) per day. Every mark carries `data-date` and `data-value`
(the number the JSON analytics report for that day), and the root carries `data-total` (the period's figure),
so a test or a table alternative can read exactly what is drawn. Colours are values of @shopify/polaris-tokens
9.x (light theme), as in web/static/admin/admin.css: text, text-secondary, border, text-link, bg-fill-critical,
bg-fill-success and bg-fill-magic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 16, 40
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TEXT = "#303030"  # --p-color-text
TEXT_SECONDARY = "#616161"  # --p-color-text-secondary (4.5:1 on white)
GRID = "#e3e3e3"  # --p-color-border


@dataclass(frozen=True)
class Chart:
    title: str
    field: str  # the per-day field of chat.analytics' `daily`
    total: str  # the period's field of chat.analytics
    colour: str
    kind: str  # "bar" or "line"
    low: float
    high: float | None  # None: from the data
    percent: bool = False


CHARTS: dict[str, Chart] = {
    "sessions": Chart("Chat sessions per day", "sessions", "sessions", "#005bd3", "bar", 0, None),
    "escalation_rate": Chart("Escalation rate per day", "escalation_rate", "escalation_rate", "#c70a24", "line",
                             0, 1, percent=True),
    "resolution_rate": Chart("Resolution rate per day", "resolution_rate", "resolution_rate", "#29845a", "line",
                             0, 1, percent=True),
    "sentiment": Chart("Average sentiment per day", "average_sentiment", "average_sentiment", "#8051ff", "line",
                       -1, 1),
}


def _label(chart: Chart, value: float) -> str:
    if chart.percent:
        return f"{value * 100:.0f}%"
    return f"{value:+.2f}" if chart.low < 0 else f"{value:g}"


def _num(value: float) -> str:
    """A number as the JSON analytics write it: counts without a decimal point."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _nice_max(value: float) -> float:
    """An axis maximum at or above `value` whose four grid steps are whole, round numbers (1, 2, 3, 5 × 10^n)."""
    step = 1.0
    while True:
        for factor in (1, 2, 3, 5):
            if step * factor * 4 >= value:
                return step * factor * 4
        step *= 10


def _short_day(iso: str) -> str:
    return f"{MONTHS[int(iso[5:7]) - 1]} {int(iso[8:10])}"  # "Dec 7": unambiguous in every date order


def render(name: str, analytics: Mapping[str, Any]) -> str:
    """The SVG for chart `name` (a key of CHARTS) of one `chat.analytics.analytics` result."""
    chart = CHARTS[name]
    days: Sequence[Mapping[str, Any]] = analytics.get("daily") or []
    values: list[float | None] = [None if day.get(chart.field) is None else float(day[chart.field]) for day in days]
    known = [v for v in values if v is not None]
    high = chart.high if chart.high is not None else _nice_max(max(known, default=0.0))
    low = chart.low
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(days))

    def y(value: float) -> float:
        return TOP + plot_h - (value - low) / (high - low) * plot_h

    total = analytics.get(chart.total)
    first, last = (days[0]["date"], days[-1]["date"]) if days else ("", "")
    summary = (f"{len(days)} days from {first} to {last}. "
               f"{'Total' if name == 'sessions' else 'Over the period'}: "
               f"{'no data' if total is None else _label(chart, float(total))}.")
    if known:
        peak = values.index(max(known))
        summary += f" Highest: {_label(chart, max(known))} on {days[peak]['date']}."
    ids = f"lumi-chart-{name}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{ids}-title {ids}-desc" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'font-family="-apple-system, BlinkMacSystemFont, \'Segoe UI\', Roboto, sans-serif" font-size="12" '
        f'data-chart="{name}" data-total="{"" if total is None else total}">',
        f'<title id="{ids}-title">{escape(chart.title)}</title>',
        f'<desc id="{ids}-desc">{escape(summary)}</desc>',
    ]
    # Horizontal grid and the value axis: five evenly spaced labels.
    for step in range(5):
        tick = low + (high - low) * step / 4
        gy = y(tick)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{gy:.1f}" y2="{gy:.1f}" stroke="{GRID}" '
                   f'stroke-width="1"/>')
        out.append(f'<text x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" fill="{TEXT_SECONDARY}">'
                   f'{escape(_label(chart, tick))}</text>')
    # The date axis: at most eight labels, the last day always named.
    every = max(1, -(-len(days) // 8))
    for i, day in enumerate(days):
        if i % every == 0 or i == len(days) - 1:
            cx = LEFT + slot * (i + 0.5)
            out.append(f'<text x="{cx:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                       f'fill="{TEXT_SECONDARY}">{_short_day(day["date"])}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" fill="{TEXT}">'
               'Day (UTC)</text>')
    axis = "Share of sessions" if chart.percent else ("Sentiment (−1 to +1)" if chart.low < 0 else "Sessions")
    out.append(f'<text transform="translate(12 {TOP + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" '
               f'fill="{TEXT}">{axis}</text>')
    out.append('<g class="marks">')
    if chart.kind == "bar":
        bar_w = max(1.0, slot * 0.7)
        base = y(0)
        for i, (day, value) in enumerate(zip(days, values, strict=True)):
            top = y(float(value or 0))
            out.append(f'<rect x="{LEFT + slot * i + (slot - bar_w) / 2:.1f}" y="{top:.1f}" width="{bar_w:.1f}" '
                       f'height="{max(0.0, base - top):.1f}" fill="{chart.colour}" data-date="{day["date"]}" '
                       f'data-value="{_num(value or 0)}"><title>{day["date"]}: {_num(value or 0)}</title></rect>')
    else:
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, value in enumerate(values):
            if value is None:  # no sessions that day: a gap, never a made-up zero
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{LEFT + slot * (i + 0.5):.1f},{y(float(value)):.1f}")
        if segment:
            segments.append(segment)
        for points in segments:
            out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{chart.colour}" '
                       f'stroke-width="2"/>')
        for i, (day, value) in enumerate(zip(days, values, strict=True)):
            if value is not None:
                out.append(f'<circle cx="{LEFT + slot * (i + 0.5):.1f}" cy="{y(float(value)):.1f}" r="3" '
                           f'fill="{chart.colour}" data-date="{day["date"]}" data-value="{_num(value)}">'
                           f'<title>{day["date"]}: {escape(_label(chart, float(value)))}</title></circle>')
    out.append("</g></svg>")
    return "\n".join(out)
