"""The pictures report.html shows, as inline SVG (no script, no fetch): the loss curve, serving latency by
concurrency (p50/p95/p99) and the step timeline. Pure: a Report's rows in, an `<svg>` string out ('' when
the run has nothing to draw).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from html import escape

from kaic.compare.svg import SVG_NS, color, fmt
from kaic.reports.model import Report
from kaic.results import ResultRow

_STEP_N = re.compile(r"(\d+)$")


def _xy_chart(title: str, x_label: str, unit: str, series: Sequence[tuple[str, list[tuple[float, float]]]],
              width: int = 560, height: int = 230) -> str:
    pts = [p for _, ps in series for p in ps if math.isfinite(p[1])]
    if not pts:
        return ""
    left, right, top, bottom = 64, 16, 26, 44
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    lo, hi = min(0.0, min(p[1] for p in pts)), max(p[1] for p in pts)
    hi = hi if hi > lo else lo + 1.0
    pw, ph = width - left - right, height - top - bottom

    def x(v: float) -> float:
        return left + (pw * (v - x0) / (x1 - x0) if x1 > x0 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1 - (v - lo) / (hi - lo))

    parts = [f'<svg class="chart" role="img" xmlns="{SVG_NS}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
             f'<text class="ct" x="8" y="16">{escape(title)}<tspan class="cu"> {escape(unit)}</tspan></text>',
             f'<rect class="frame" x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#d9dee7"/>']
    for v in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text class="ca" x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{escape(fmt(v))}</text>')
    parts.append(f'<text class="ca" x="{left}" y="{top + ph + 14}">{escape(fmt(x0))}</text>'
                 f'<text class="ca" x="{left + pw}" y="{top + ph + 14}" text-anchor="end">{escape(fmt(x1))}</text>'
                 f'<text class="ca" x="{left + pw / 2:.0f}" y="{top + ph + 14}" text-anchor="middle">'
                 f"{escape(x_label)}</text>")
    lx = left
    for i, (label, ps) in enumerate(series):
        c = color(i)
        coords = [(x(a), y(b)) for a, b in ps if math.isfinite(b)]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{path}"/>')
        for a, b in ps:
            if math.isfinite(b):
                parts.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3" fill="{c}"><title>{escape(label)} '
                             f"{escape(x_label)} {escape(fmt(a))}: {escape(fmt(b))} {escape(unit)}</title></circle>")
        parts.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{c}"/>'
                     f'<text class="cl" x="{lx + 14}" y="{height - 5}">{escape(label)}</text>')
        lx += 28 + 7 * len(label)
    parts.append("</svg>")
    return "".join(parts)


def _family(rows: Sequence[ResultRow], prefix: str) -> list[tuple[str, float]]:
    return [(r.metric[len(prefix):], r.value) for r in rows
            if r.metric and r.metric.startswith(prefix) and r.value is not None]


def loss_curve(report: Report) -> str:
    pts = []
    for variant, value in _family(report.rows, "loss_curve@"):
        m = _STEP_N.search(variant)
        if m:
            pts.append((float(m.group(1)), value))
    return _xy_chart("Training loss (first steps)", "step", "loss", [("loss", sorted(pts))]) if pts else ""


def latency_by_concurrency(report: Report) -> str:
    series = []
    for q in ("p50", "p95", "p99"):
        pts = []
        for variant, value in _family(report.rows, f"serve_{q}_ms@"):
            m = _STEP_N.search(variant)
            if m:
                pts.append((float(m.group(1)), value))
        if pts:
            series.append((q, sorted(pts)))
    return _xy_chart("Serving latency by concurrency", "concurrent clients", "ms", series) if series else ""


def step_timeline(report: Report, width: int = 560, bar_h: int = 18) -> str:
    """One bar per step, from the end of the previous step (the run start for the first) to its last row."""
    ends: dict[str, float] = {}
    t0 = report.info.started_at.timestamp()
    for r in report.rows:
        ends[r.step] = max(ends.get(r.step, t0), r.recorded_at.timestamp())
    if not ends:
        return ""
    order = sorted(ends, key=lambda s: ends[s])
    total = max(ends.values()) - t0 or 1.0
    label_w, top = 90, 26
    plot_w = width - label_w - 80
    height = top + len(order) * (bar_h + 6) + 20
    parts = [f'<svg class="chart" role="img" xmlns="{SVG_NS}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="Step timeline">',
             '<text class="ct" x="8" y="16">Step timeline<tspan class="cu"> s from the run start</tspan></text>']
    start = t0
    for i, step in enumerate(order):
        a, b = start - t0, ends[step] - t0
        yy = top + i * (bar_h + 6)
        x = label_w + plot_w * a / total
        w = max(1.0, plot_w * (b - a) / total)
        parts.append(f'<text class="cl" x="{label_w - 6}" y="{yy + bar_h * 0.75:.1f}" text-anchor="end">'
                     f'{escape(step)}</text><rect x="{x:.1f}" y="{yy}" width="{w:.1f}" height="{bar_h}" '
                     f'fill="{color(i)}" rx="2"><title>{escape(step)}: {fmt(a)}-{fmt(b)} s</title></rect>'
                     f'<text class="cv" x="{x + w + 4:.1f}" y="{yy + bar_h * 0.75:.1f}">{fmt(b - a)} s</text>')
        start = ends[step]
    parts.append("</svg>")
    return "".join(parts)
