"""e2e.log: a plain, grep-friendly log; one line per check and a final summary line.

    PASS  provision provision.gateway_api [ai_inference] MUST - Gateway API CRDs served
    ...
    kaic run kaic-...: 12 passed, 1 failed, 30 skipped, 0 errors; run status: failed
"""

from __future__ import annotations

from kaic.reports.model import Report, fmt_value
from kaic.results import Status

FILENAME = "e2e.log"
MARKS = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.SKIPPED: "SKIP", Status.ERROR: "ERROR"}


def summary_line(report: Report) -> str:
    c = report.counts
    return (f"kaic run {report.info.run_id}: {c['passed']} passed, {c['failed']} failed, "
            f"{c['skipped']} skipped, {c['error']} errors; run status: {report.headline}")


def render(report: Report) -> str:
    i = report.info
    lines = [
        f"# kaic {i.suite_version} run {i.run_id} platform={i.platform} cluster={i.cluster or '-'} "
        f"k8s={i.k8s_version or '-'} accelerator={i.accelerator or '-'} cncf={report.k8s_version}",
        f"# started {i.started_at.isoformat()} finished {i.finished_at.isoformat()}",
    ]
    for r in report.rows:
        value = fmt_value(r)
        parts = [f"{MARKS[r.status]:<5}", r.step, r.name, f"[{r.requirement_id or '-'}]", r.level.value]
        if value:
            parts.append(f"value={value.replace(' ', '')}")
        if r.threshold:
            parts.append(f"threshold=({r.threshold})")
        line = " ".join(parts)
        if r.message:
            line += " - " + " ".join(r.message.split())  # one line per check, whatever the message holds
        lines.append(line)
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"
