"""results.json: run metadata, derived status, counts, every row and a per-requirement summary."""

from __future__ import annotations

import json
from typing import Any

from kaic.reports.model import Report, RequirementSummary
from kaic.results import ResultRow, exit_code, row_to_dict

FILENAME = "results.json"
SCHEMA = "kaic.results/v1"


def _row(row: ResultRow) -> dict[str, Any]:
    d = row_to_dict(row)
    d["name"] = row.name
    for key in ("started_at", "recorded_at"):
        d[key] = d[key].isoformat()
    return d


def _requirement(s: RequirementSummary) -> dict[str, Any]:
    return {
        "id": s.id, "category": s.requirement.category, "title": s.requirement.title,
        "level": s.level.value if s.level else None, "verdict": s.verdict.value,
        "checks": [{"name": r.name, "step": r.step, "status": r.status.value} for r in s.rows],
    }


def document(report: Report) -> dict[str, Any]:
    i = report.info
    return {
        "schema": SCHEMA,
        "run": {
            "run_id": i.run_id, "suite_version": i.suite_version, "platform": i.platform,
            "cluster": i.cluster, "k8s_version": i.k8s_version, "accelerator": i.accelerator,
            "started_at": i.started_at.isoformat(),
            "finished_at": i.finished_at.isoformat(), "duration_s": round(i.duration_s, 3),
        },
        "cncf_k8s_version": report.k8s_version,
        "status": report.status.value,
        "headline": report.headline,
        "cncf_verdict": report.cncf_verdict,
        "exit_code": exit_code(report.rows),
        "counts": report.counts,
        "requirements": [_requirement(s) for s in report.requirements],
        "rows": [_row(r) for r in report.rows],
    }


def render(report: Report) -> str:
    return json.dumps(document(report), indent=2, sort_keys=False) + "\n"
