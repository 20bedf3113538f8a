"""The comparison HTML report: one self-contained file (inline CSS, inline SVG), no script, no fetch."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

import pyarrow.compute as pc

from kaic import __version__
from kaic.catalog import BY_ID
from kaic.compare.core import Comparison
from kaic.compare.regression import RegressionResult
from kaic.compare.render_text import fmt
from kaic.compare.svg import Bar, Series, bar_chart, color, line_chart

STATUSES = ("passed", "failed", "skipped", "error")
CSS = """
:root{--ok:#1e8449;--okbg:#d5f5e3;--bad:#c0392b;--badbg:#fadbd8;--warnbg:#fcf3cf;--warn:#9a7d0a;--mute:#6b7280;
--line:#e5e7eb;--bg:#f8fafc}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:var(--bg);color:#111827}
header{background:#111827;color:#f9fafb;padding:18px 28px}header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#d1d5db;font-size:13px}main{padding:18px 28px;max-width:1500px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:0 0 18px}
h2{font-size:16px;margin:0 0 10px}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.passed{background:var(--okbg);color:var(--ok)}.failed,.error{background:var(--badbg);color:var(--bad);font-weight:600}
.skipped{background:var(--warnbg);color:var(--warn)}.none{color:var(--mute)}
.lvl{font-size:11px;opacity:.75;margin-left:4px}.better{color:var(--ok)}.worse{color:var(--bad);font-weight:600}
.same,.na{color:var(--mute)}.baseline{color:#1d4ed8;font-weight:600}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;margin-right:6px}
.badge.bad{background:var(--badbg);color:var(--bad)}.badge.ok{background:var(--okbg);color:var(--ok)}
section.regressions.flagged{border:2px solid var(--bad)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px;display:flex;flex-wrap:wrap;gap:6px}
.card.flagged{border-color:var(--bad);box-shadow:0 0 0 1px var(--bad)}
svg .ct{font:600 13px system-ui,sans-serif}svg .cu{font-weight:400;fill:#6b7280}
svg .cl,svg .cv,svg .ca{font:11px system-ui,sans-serif;fill:#374151}svg .ca{fill:#6b7280}
svg .axis{stroke:#9ca3af}svg .frame{fill:none;stroke:#e5e7eb}
small{color:var(--mute)}details summary{cursor:pointer;color:var(--mute)}
"""


def render_html(c: Comparison, source: str = "", generated_at: datetime | None = None) -> str:
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    colors = {g: color(i) for i, g in enumerate(c.groups)}
    flagged = c.regressed
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>kaic comparison · {len(c.groups)} {escape(c.by)}s</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>kaic cross-platform comparison</h1><p>by {escape(c.by)} · {escape(c.window)} · "
        f"baseline <b>{escape(c.baseline)}</b> ({escape(c.baseline_reason)}) · "
        f"{escape(source)} · generated {when} by kaic {escape(__version__)}</p></header><main>",
        _platforms(c, colors),
        _regressions(c, flagged),
        _matrix(c),
        _metrics(c),
        _charts(c, colors),
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _platforms(c: Comparison, colors: dict[str, str]) -> str:
    rows = []
    for g, r in c.runs.items():
        n = r.counts
        base = ' <span class="badge ok">baseline</span>' if g == c.baseline else ""
        rows.append(
            f'<tr><td><span class="sw" style="background:{colors[g]}"></span><b>{escape(g)}</b>{base}</td>'
            f"<td>{escape(r.cluster or '—')}</td><td>{escape(r.k8s_version or '—')}</td>"
            f"<td>{escape(r.accelerator or '—')}</td><td>{escape(r.driver or '—')}</td>"
            f"<td><code>{escape(r.run_id)}</code><br><small>{r.started_at:%Y-%m-%d %H:%M} UTC · "
            f"suite {escape(r.suite_version or '?')}</small></td><td class=\"num\">{r.runs_in_window}</td>"
            '<td class="num">'
            + " / ".join(f'<span class="{s}">{n.get(s, 0)}</span>' for s in STATUSES)
            + "</td></tr>"
        )
    return (f'<section class="platforms"><h2>Platforms (latest run of each {escape(c.by)})</h2><table>'
            f"<tr><th>{escape(c.by)}</th><th>cluster</th><th>Kubernetes</th><th>accelerator</th>"
            "<th>driver</th><th>latest run</th><th>runs</th><th>passed / failed / skipped / error</th></tr>"
            + "".join(rows) + "</table></section>")


def _regressions(c: Comparison, flagged: list[RegressionResult]) -> str:
    skipped = sum(1 for r in c.regressions if r.status.value == "skipped")
    head = (f'<span class="badge bad">{len(flagged)} regression(s)</span>' if flagged
            else '<span class="badge ok">no regression</span>')
    body = ""
    if flagged:
        body = (f"<table><tr><th>{escape(c.by)}</th><th>metric</th><th>latest</th>"
                "<th>history median</th><th>change</th><th>bound</th><th>run</th></tr>")
        for r in flagged:
            change = r.change
            body += (f'<tr class="failed"><td>{escape(r.group)}</td><td>{escape(r.metric)}</td>'
                     f'<td class="num">{fmt(r.latest)} {escape(r.unit)}</td>'
                     f'<td class="num">{fmt(r.median)}</td>'
                     f'<td class="num">{"" if change is None else f"{change:+.1%}"}</td>'
                     f'<td class="num">{fmt(r.bound)}</td><td><code>{escape(r.run_id)}</code></td></tr>')
        body += "</table>"
    judged = "".join(
        f"<tr><td>{escape(r.group)}</td><td>{escape(r.metric)}</td>"
        f'<td class="{r.status.value}">{r.status.value}</td><td>{escape(r.message)}</td></tr>'
        for r in c.regressions
    )
    return (f'<section class="regressions{" flagged" if flagged else ""}"><h2>Regressions</h2><p>{head}'
            f"{len(c.regressions)} metric(s) judged, {skipped} skipped for lack of history. "
            f"<small>Rule: {escape(c.rule.describe())}.</small></p>{body}"
            f"<details><summary>every judgement</summary><table><tr><th>{escape(c.by)}</th><th>metric</th>"
            f"<th>status</th><th>detail</th></tr>{judged}</table></details></section>")


def _matrix(c: Comparison) -> str:
    if not c.matrix:
        return ('<section class="matrix"><h2>Requirement matrix</h2>'
                '<p class="none">No requirement rows.</p></section>')
    head = "".join(f"<th>{escape(g)}</th>" for g in c.groups)
    rows = []
    for req in c.requirements:
        title = BY_ID[req].title if req in BY_ID else ""
        cells = []
        for g in c.groups:
            cell = c.matrix.get(req, {}).get(g)
            if cell is None:
                cells.append('<td class="none" title="not evaluated">—</td>')
                continue
            tip = f"{cell.checks} check(s); {cell.message}" if cell.message else f"{cell.checks} check(s)"
            cells.append(f'<td class="{cell.status}" title="{escape(tip)}">{cell.status}'
                         f'<span class="lvl">{cell.level}</span></td>')
        rows.append(f"<tr><th>{escape(req)}<br><small>{escape(title)}</small></th>{''.join(cells)}</tr>")
    return ('<section class="matrix"><h2>Requirement matrix '
            "(latest run; worst check status per requirement)</h2>"
            f"<table><tr><th>requirement</th>{head}</tr>{''.join(rows)}</table></section>")


def _metrics(c: Comparison) -> str:
    if not c.metrics:
        return ""
    head = "".join(f"<th>{escape(g)}</th>" for g in c.groups)
    rows = []
    for m in c.metrics:
        arrow = {"higher": "↑ higher", "lower": "↓ lower"}.get(m.direction.value, "")
        cells = []
        for g in c.groups:
            v, ratio, mark = m.values.get(g), m.ratios.get(g), m.marks.get(g, "")
            if v is None:
                cells.append('<td class="num none">—</td>')
                continue
            extra = "" if ratio is None or mark == "baseline" else f" <small>×{ratio:.2f}</small>"
            cls = {"n/a": "na"}.get(mark, mark)
            cells.append(f'<td class="num {cls}" title="{escape(mark)}">{fmt(v)}{extra}</td>')
        rows.append(f"<tr><th>{escape(m.metric)}</th><td>{escape(m.unit)}</td><td>{arrow}</td>{''.join(cells)}</tr>")
    return (f'<section class="metrics"><h2>Metrics (latest run; ×ratio to {escape(c.baseline)}, colored when '
            f"better or worse)</h2><table><tr><th>metric</th><th>unit</th><th>better</th>{head}</tr>"
            f"{''.join(rows)}</table></section>")


def _trends(c: Comparison) -> dict[str, dict[str, list[tuple[datetime, float, str]]]]:
    """metric -> group -> [(started_at, mean value, run_id)] over the window, oldest first."""
    if c.history is None or c.history.num_rows == 0:
        return {}
    agg = (c.history.group_by(["metric", "group", "run_id"])
           .aggregate([("value", "mean"), ("started_at", "min")])
           .sort_by([("metric", "ascending"), ("group", "ascending"), ("started_at_min", "ascending")]))
    agg = agg.filter(pc.is_finite(agg["value_mean"]))
    out: dict[str, dict[str, list[tuple[datetime, float, str]]]] = {}
    for m, g, r, v, t in zip(agg["metric"].to_pylist(), agg["group"].to_pylist(), agg["run_id"].to_pylist(),
                             agg["value_mean"].to_pylist(), agg["started_at_min"].to_pylist(), strict=True):
        out.setdefault(m, {}).setdefault(g, []).append((t, v, r))
    return out


def _charts(c: Comparison, colors: dict[str, str]) -> str:
    trends = _trends(c)
    flagged = {(r.group, r.metric): r.run_id for r in c.regressed}
    cards = []
    for m in c.metrics:
        bars = [
            Bar(g, v, colors[g],
                note="" if m.marks.get(g) in ("baseline", "", None) or m.ratios.get(g) is None
                else f"×{m.ratios[g]:.2f}",
                emphasis=m.marks.get(g, ""))
            for g in c.groups if (v := m.values.get(g)) is not None
        ]
        svg_bar = bar_chart(m.metric, m.unit, bars)
        series = []
        for g, pts in trends.get(m.metric, {}).items():
            ring = frozenset(i for i, p in enumerate(pts) if flagged.get((g, m.metric)) == p[2])
            series.append(Series(g, colors.get(g, "#999"), tuple((t, v) for t, v, _ in pts), ring))
        svg_line = line_chart(f"{m.metric} over runs", m.unit, series) if any(
            len(s.points) > 1 for s in series) else ""
        is_flagged = any(k[1] == m.metric for k in flagged)
        cards.append(f'<div class="card{" flagged" if is_flagged else ""}" id="metric-{escape(m.metric)}">'
                     f"{svg_bar}{svg_line}</div>")
    if not cards:
        return ""
    return ('<section class="charts-section">'
            "<h2>Charts: latest value per platform, and the metric over runs</h2>"
            f'<div class="charts">{"".join(cards)}</div></section>')
