"""Small reading charts drawn on the server as inline SVG: no chart library to vendor, no script,
and nothing the console's Content-Security-Policy forbids (presentation attributes, no style).

A chart is one field of one device over a window: a line for numbers, steps for on/off fields,
a dashed mark at the alert's moment. Each chart comes with its readings as a table for people who
do not see it (the page puts that table beside it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from html import escape

from markupsafe import Markup

from edge.model import FieldValue

WIDTH = 560
HEIGHT = 170
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 52, 14, 10, 30
_INK = "#1b1f24"
_LINE = "#0b4fa8"  # 7.1:1 on white
_MARK = "#b3261e"
_GRID = "#c9ced6"
MAX_CHARTS = 6


@dataclass(frozen=True, slots=True)
class Series:
    """One field's values over time, oldest first."""

    field: str
    points: list[tuple[datetime, float]]
    on_off: bool  # a bool field: drawn as steps between 0 and 1


def series_of(
    readings: Iterable[tuple[datetime, dict[str, FieldValue]]], first: Sequence[str] = ()
) -> list[Series]:
    """Every numeric or on/off field of `readings`, the fields named in `first` first."""
    values: dict[str, list[tuple[datetime, float]]] = {}
    on_off: dict[str, bool] = {}
    for at, fields in sorted(readings, key=lambda r: r[0]):
        for name, value in fields.items():
            if isinstance(value, str):
                continue
            values.setdefault(name, []).append((at, float(value)))
            on_off[name] = on_off.get(name, True) and isinstance(value, bool)
    order = [f for f in first if f in values] + sorted(f for f in values if f not in first)
    return [Series(f, values[f], on_off[f]) for f in order[:MAX_CHARTS]]


def _label(value: float) -> str:
    return f"{value:.0f}" if value.is_integer() or abs(value) >= 100 else f"{value:.1f}"


def _time_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """The window's ends, and the middle too when it spans hours (a day's chart reads by it)."""
    ticks = [(start, "start"), (end, "end")]
    if end - start >= timedelta(hours=2):
        ticks.insert(1, (start + (end - start) / 2, "middle"))
    return ticks


def _time_label(at: datetime, start: datetime, end: datetime, zone: tzinfo) -> str:
    """HH:MM; with the date (MM-DD HH:MM) when the window crosses a day in the community's zone,
    so a 24-hour chart's two ends do not both read "12:01"."""
    local = at.astimezone(zone)
    if start.astimezone(zone).date() != end.astimezone(zone).date():
        return f"{local:%m-%d %H:%M}"
    return f"{local:%H:%M}"


def fitted(start: datetime, end: datetime, data: Sequence[Series]) -> datetime:
    """A later start when the readings fill only the end of the window (a device that began
    reporting an hour ago on a 24-hour chart): from a little before the first reading, so the
    line is not squeezed against the right edge. At least ten minutes are kept."""
    firsts = [s.points[0][0] for s in data if s.points]
    if not firsts:
        return start
    first = min(firsts)
    margin = max((end - first) / 20, timedelta(minutes=1))
    return max(start, min(first - margin, end - timedelta(minutes=10)))


def svg(
    data: Series, start: datetime, end: datetime, zone: tzinfo, mark: datetime | None, title: str
) -> Markup:
    """The chart as an `<svg>` element; `title` is its accessible name."""
    span = max((end - start).total_seconds(), 1.0)
    values = [v for _, v in data.points]
    low, high = (0.0, 1.0) if data.on_off else (min(values), max(values))
    if high == low:
        low, high = low - 1, high + 1
    plot_w = WIDTH - _PAD_L - _PAD_R
    plot_h = HEIGHT - _PAD_T - _PAD_B

    def x(at: datetime) -> float:
        return _PAD_L + plot_w * min(max((at - start).total_seconds() / span, 0.0), 1.0)

    def y(value: float) -> float:
        return _PAD_T + plot_h * (1 - (value - low) / (high - low))

    coords: list[str] = []
    for n, (at, value) in enumerate(data.points):
        if data.on_off and n:  # hold the previous state until this reading
            coords.append(f"{x(at):.1f},{y(data.points[n - 1][1]):.1f}")
        coords.append(f"{x(at):.1f},{y(value):.1f}")
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{_PAD_L}" y="{_PAD_T}" width="{plot_w}" height="{plot_h}" fill="#ffffff" '
        f'stroke="{_GRID}"/>',
    ]
    ticks = ("0", "1") if data.on_off else (_label(low), _label(high))
    for value, text in ((low, ticks[0]), (high, ticks[1])):
        parts.append(
            f'<text x="{_PAD_L - 6}" y="{y(value) + 5:.1f}" text-anchor="end" font-size="15" '
            f'fill="{_INK}">{escape(text)}</text>'
        )
    for at, anchor in _time_ticks(start, end):
        if anchor == "middle":
            parts.append(
                f'<line class="tick" x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{_PAD_T}" '
                f'y2="{_PAD_T + plot_h}" stroke="{_GRID}" stroke-width="1"/>'
            )
        parts.append(
            f'<text x="{x(at):.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}" font-size="15" '
            f'fill="{_INK}">{_time_label(at, start, end, zone)}</text>'
        )
    if mark is not None and start <= mark <= end:
        parts.append(
            f'<line class="mark" x1="{x(mark):.1f}" x2="{x(mark):.1f}" y1="{_PAD_T}" '
            f'y2="{_PAD_T + plot_h}" stroke="{_MARK}" stroke-width="2" stroke-dasharray="5 4"/>'
        )
    if len(coords) > 1:
        parts.append(
            f'<polyline points="{" ".join(coords)}" fill="none" stroke="{_LINE}" '
            'stroke-width="2.5" stroke-linejoin="round"/>'
        )
    for at, value in data.points[-200:]:  # dots show where readings are (a line hides gaps)
        parts.append(f'<circle cx="{x(at):.1f}" cy="{y(value):.1f}" r="3" fill="{_LINE}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
