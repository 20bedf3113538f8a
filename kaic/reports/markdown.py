"""summary.md: run metadata, a requirement table at the run's version, failed checks first, metrics."""

from __future__ import annotations

from collections.abc import Sequence

from kaic.reports.model import CheckLine, Report, check_lines, fmt_value, meta_pairs
from kaic.results import ResultRow, Status

FILENAME = "summary.md"
ICONS = {Status.PASSED: "pass", Status.FAILED: "**FAIL**", Status.SKIPPED: "skip", Status.ERROR: "**ERROR**"}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return lines


def _check(line: CheckLine) -> tuple[str, ...]:
    r = line.first
    name = f"`{r.check_id}` (folded, below)" if line.folded else f"`{r.name}`"
    return (ICONS[line.status], r.level.value, r.step, name, r.requirement_id or "",
            "" if line.folded else fmt_value(r), line.summary)


def _sub_table(line: CheckLine) -> list[str]:
    rows: list[ResultRow] = sorted(line.rows, key=lambda r: r.status is not Status.FAILED)
    return ["", f"### `{line.first.check_id}` ({line.summary})", "",
            *_table(("status", "message"), [(ICONS[r.status], r.message) for r in rows])]


def render(report: Report) -> str:
    i, c = report.info, report.counts
    out = [
        f"# kaic conformance report: {i.run_id}",
        "",
        f"**Run status: {report.headline.upper()}** — {c['passed']} passed, {c['failed']} failed, "
        f"{c['skipped']} skipped, {c['error']} errors (skips are not failures); "
        f"CNCF v{report.k8s_version}: {report.cncf_verdict}.",
        "",
        *_table(("", ""), meta_pairs(report)),
        "",
        f"## CNCF requirements (v{report.k8s_version})",
        "",
        *_table(("id", "category", "level", "kaic verdict", "checks"), [
            (s.id, s.requirement.category, s.level.value if s.level else "-", s.verdict.value,
             ", ".join(f"{r.name} ({r.status.value})" for r in s.rows) or "-")
            for s in report.listed
        ]),
    ]
    header = ("status", "level", "step", "check", "requirement", "value", "message")
    lines = check_lines(report.rows)
    out += ["", "## Checks (failed first)", "", *_table(header, [_check(ln) for ln in lines])]
    for ln in lines:
        if ln.folded:
            out += _sub_table(ln)
    metrics = report.metric_rows
    if metrics:
        out += ["", "## Metrics", "", *_table(("step", "metric", "value", "threshold", "status"), [
            (r.step, f"`{r.metric}`", fmt_value(r), r.threshold or "", r.status.value) for r in metrics
        ])]
    return "\n".join(out) + "\n"
