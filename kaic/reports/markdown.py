"""summary.md: run metadata, a requirement table at the run's version, failed checks first, metrics."""

from __future__ import annotations

from collections.abc import Sequence

from kaic.reports.model import Report, failed_first, fmt_value, meta_pairs
from kaic.results import ResultRow, Status

FILENAME = "summary.md"
ICONS = {Status.PASSED: "pass", Status.FAILED: "**FAIL**", Status.SKIPPED: "skip", Status.ERROR: "**ERROR**"}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return lines


def _check(r: ResultRow) -> tuple[str, ...]:
    return (ICONS[r.status], r.level.value, r.step, f"`{r.name}`", r.requirement_id or "", fmt_value(r),
            r.message)


def render(report: Report) -> str:
    i, c = report.info, report.counts
    out = [
        f"# kaic conformance report: {i.run_id}",
        "",
        f"**Run status: {report.status.value.upper()}** — {c['passed']} passed, {c['failed']} failed, "
        f"{c['skipped']} skipped, {c['error']} errors (skips are not failures).",
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
    checks = [_check(r) for r in failed_first(report.rows)]
    out += ["", "## Checks (failed first)", "", *_table(header, checks)]
    metrics = report.metric_rows
    if metrics:
        out += ["", "## Metrics", "", *_table(("step", "metric", "value", "threshold", "status"), [
            (r.step, f"`{r.metric}`", fmt_value(r), r.threshold or "", r.status.value) for r in metrics
        ])]
    return "\n".join(out) + "\n"
