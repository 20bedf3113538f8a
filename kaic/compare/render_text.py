"""Text renderings of a `Comparison`: a rich terminal table, CSV (long format) and JSON."""

from __future__ import annotations

import csv
import io
import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kaic.compare.core import Comparison

STATUS_STYLE = {"passed": "green", "failed": "bold red", "error": "red", "skipped": "yellow"}
MARK_STYLE = {"better": "green", "worse": "red", "same": "dim", "baseline": "bold cyan", "n/a": "dim"}
MARK_ARROW = {"better": "▲", "worse": "▼", "same": "=", "baseline": "◆", "n/a": "", "": ""}


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def render_table(c: Comparison, console: Console) -> None:
    console.print(f"[bold]kaic compare[/bold] · by {c.by} · {c.window}")
    console.print(f"baseline: [bold cyan]{c.baseline}[/bold cyan] ({c.baseline_reason})")

    runs = Table(title="Latest run per " + c.by, title_justify="left")
    for col in (c.by, "run", "started (UTC)", "k8s", "accelerator", "driver", "runs",
                "passed/failed/skipped/error"):
        runs.add_column(col)
    for g, r in c.runs.items():
        n = r.counts
        runs.add_row(g, r.run_id, f"{r.started_at:%Y-%m-%d %H:%M}", r.k8s_version or "—",
                     r.accelerator or "—", r.driver or "—", str(r.runs_in_window),
                     f"{n.get('passed', 0)}/{n.get('failed', 0)}/{n.get('skipped', 0)}/{n.get('error', 0)}")
    console.print(runs)

    if c.matrix:
        matrix = Table(title="Requirements (latest run)", title_justify="left")
        matrix.add_column("requirement")
        for g in c.groups:
            matrix.add_column(g)
        for req in c.requirements:
            cells = c.matrix.get(req, {})
            row: list[Text | str] = [req]
            for g in c.groups:
                cell = cells.get(g)
                row.append(Text(f"{cell.status} {cell.level}", style=STATUS_STYLE.get(cell.status, ""))
                           if cell else Text("—", style="dim"))
            matrix.add_row(*row)
        console.print(matrix)

    if c.metrics:
        metrics = Table(title=f"Metrics (latest run; ratio to {c.baseline})", title_justify="left")
        metrics.add_column("metric")
        metrics.add_column("unit")
        metrics.add_column("better")
        for g in c.groups:
            metrics.add_column(g, justify="right")
        for m in c.metrics:
            row = [m.metric, m.unit, {"higher": "↑", "lower": "↓"}.get(m.direction.value, "")]
            for g in c.groups:
                value, ratio, mark = m.values.get(g), m.ratios.get(g), m.marks.get(g, "")
                text = fmt(value)
                if value is not None and ratio is not None and mark != "baseline":
                    text += f" ×{ratio:.2f}{MARK_ARROW.get(mark, '')}"
                row.append(Text(text, style=MARK_STYLE.get(mark, "")))
            metrics.add_row(*row)
        console.print(metrics)

    flagged = c.regressed
    skipped = sum(1 for r in c.regressions if r.status.value == "skipped")
    console.print(f"regressions: {len(flagged)} of {len(c.regressions)} metric(s) judged"
                  + (f", {skipped} skipped (not enough history)" if skipped else "")
                  + f" · rule: {c.rule.describe()}")
    for reg in flagged:
        console.print(Text(f"  REGRESSION {reg.group} {reg.metric}: {reg.message}", style="bold red"))


def render_csv(c: Comparison) -> str:
    """Long format: one line per (kind, name, group), kinds requirement | metric | regression | run."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["kind", "name", "group", "status", "level", "value", "unit", "direction", "ratio", "mark",
                "baseline", "run_id", "message"])
    for g, r in c.runs.items():
        w.writerow(["run", r.run_id, g, "", "", "", "", "", "", "", c.baseline, r.run_id,
                    f"k8s={r.k8s_version} accelerator={r.accelerator} driver={r.driver} "
                    f"started={r.started_at.isoformat()} runs={r.runs_in_window}"])
    for req in c.requirements:
        for g, cell in c.matrix.get(req, {}).items():
            w.writerow(["requirement", req, g, cell.status, cell.level, "", "", "", "", "", c.baseline,
                        c.runs[g].run_id if g in c.runs else "", cell.message])
    for m in c.metrics:
        for g in c.groups:
            v = m.values.get(g)
            if v is None:
                continue
            ratio = m.ratios.get(g)
            w.writerow(["metric", m.metric, g, "", "", repr(v), m.unit, m.direction.value,
                        "" if ratio is None else repr(ratio), m.marks.get(g, ""), c.baseline,
                        c.runs[g].run_id if g in c.runs else "", ""])
    for reg in c.regressions:
        w.writerow(["regression", reg.metric, reg.group, reg.status.value, "INFO", repr(reg.latest), reg.unit,
                    reg.direction.value, "", "", c.baseline, reg.run_id, reg.message])
    return out.getvalue()
