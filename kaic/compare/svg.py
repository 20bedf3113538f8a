"""Inline SVG charts, generated in Python: no script, no external fetch, readable offline.

Each chart is a self-contained `<svg>` string with `<title>` tooltips on its marks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

SVG_NS = "http://www.w3.org/2000/svg"
STROKES = {"worse": ' stroke="#c0392b" stroke-width="2"', "better": ' stroke="#1e8449" stroke-width="2"'}
PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e",
           "#9498a0")


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def fmt(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:.4g}M"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def nice_max(value: float) -> float:
    """A round axis maximum at or above value (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10**exp
        if top >= value:
            return float(top)
    return float(10 ** (exp + 1))


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    color: str
    note: str = ""  # tooltip extra, e.g. "×0.93 worse"
    emphasis: str = ""  # '', 'worse', 'better', 'baseline'


def bar_chart(title: str, unit: str, bars: Sequence[Bar], width: int = 360, bar_h: int = 22) -> str:
    """Horizontal bars, one per platform, value labels at the bar end."""
    label_w, pad, top = 90, 8, 26
    height = top + len(bars) * (bar_h + 6) + 22
    plot_w = width - label_w - 70
    vmax = nice_max(max((b.value for b in bars if math.isfinite(b.value)), default=1.0))
    parts = [
        f'<svg class="chart bar" role="img" xmlns="{SVG_NS}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f'<text class="ct" x="{pad}" y="16">{escape(title)}'
        f'<tspan class="cu"> {escape(unit)}</tspan></text>',
    ]
    for i, b in enumerate(bars):
        y = top + i * (bar_h + 6)
        w = 0.0 if not math.isfinite(b.value) or vmax == 0 else max(1.0, plot_w * max(b.value, 0) / vmax)
        stroke = STROKES.get(b.emphasis, "")
        ty = y + bar_h * 0.7
        label, value, note = escape(b.label), escape(fmt(b.value)), escape(b.note)
        parts.append(
            f'<text class="cl" x="{label_w - 6}" y="{ty:.1f}" text-anchor="end">{label}</text>'
            f'<rect class="mark" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{b.color}" '
            f'rx="2"{stroke}><title>{label}: {value} {escape(unit)}{note and " · " + note}</title></rect>'
            f'<text class="cv" x="{label_w + w + 4:.1f}" y="{ty:.1f}">{value}{note and " " + note}</text>'
        )
    axis_y = top + len(bars) * (bar_h + 6)
    parts.append(f'<line class="axis" x1="{label_w}" y1="{top - 3}" x2="{label_w}" y2="{axis_y}"/>')
    parts.append(f'<text class="ca" x="{label_w}" y="{axis_y + 14}">0</text>'
                 f'<text class="ca" x="{label_w + plot_w}" y="{axis_y + 14}" text-anchor="end">'
                 f"{fmt(vmax)}</text>")
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    points: tuple[tuple[datetime, float], ...]  # sorted by time
    flagged: frozenset[int] = frozenset()  # indexes of points to ring (regressions)


def line_chart(title: str, unit: str, series: Sequence[Series], width: int = 560, height: int = 220) -> str:
    """One line per platform over run start times; flagged points ringed in red."""
    left, right, top, bottom = 64, 16, 26, 40
    pts = [p for s in series for p in s.points if math.isfinite(p[1])]
    if not pts:
        return ""
    t0 = min(p[0] for p in pts).timestamp()
    t1 = max(p[0] for p in pts).timestamp()
    lo = min(p[1] for p in pts)
    hi = max(p[1] for p in pts)
    span = hi - lo or abs(hi) * 0.1 or 1.0
    lo, hi = lo - span * 0.1, hi + span * 0.1
    pw, ph = width - left - right, height - top - bottom

    def x(t: datetime) -> float:
        return left + (pw * (t.timestamp() - t0) / (t1 - t0) if t1 > t0 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1 - (v - lo) / (hi - lo))

    parts = [
        f'<svg class="chart line" role="img" xmlns="{SVG_NS}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f'<text class="ct" x="8" y="16">{escape(title)}<tspan class="cu"> {escape(unit)}</tspan></text>',
        f'<rect class="frame" x="{left}" y="{top}" width="{pw}" height="{ph}"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        parts.append(f'<text class="ca" x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">'
                     f"{escape(fmt(v))}</text>")
    first, last = min(p[0] for p in pts), max(p[0] for p in pts)
    parts.append(f'<text class="ca" x="{left}" y="{top + ph + 14}">{first:%Y-%m-%d}</text>'
                 f'<text class="ca" x="{left + pw}" y="{top + ph + 14}" text-anchor="end">'
                 f"{last:%Y-%m-%d}</text>")
    for s in series:
        coords = [(x(t), y(v)) for t, v in s.points if math.isfinite(v)]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            parts.append(f'<polyline class="mark" fill="none" stroke="{s.color}" stroke-width="2" '
                         f'points="{path}"/>')
        for i, (t, v) in enumerate(s.points):
            if not math.isfinite(v):
                continue
            ring = ' stroke="#c0392b" stroke-width="3" r="6"' if i in s.flagged else ' r="3"'
            parts.append(f'<circle class="mark" cx="{x(t):.1f}" cy="{y(v):.1f}" fill="{s.color}"{ring}>'
                         f'<title>{escape(s.label)} {t:%Y-%m-%d %H:%M}: {escape(fmt(v))} {escape(unit)}'
                         f'{" · regression" if i in s.flagged else ""}</title></circle>')
    # legend
    lx = left
    for s in series:
        parts.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{s.color}"/>'
                     f'<text class="cl" x="{lx + 14}" y="{height - 5}">{escape(s.label)}</text>')
        lx += 24 + 7 * len(s.label)
    parts.append("</svg>")
    return "".join(parts)
