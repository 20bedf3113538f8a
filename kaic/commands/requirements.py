"""`kaic requirements [--k8s-version X] [--format table|json]`: CNCF requirements and how kaic checks each.

With a version: the ids that version lists, with their level there. Without: every id as a matrix of
levels over the versions kaic has templates for. Then kaic's own checks (no CNCF id) with their
level and metrics.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kaic import catalog
from kaic.catalog import CheckSpec, Requirement


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k8s-version", help=f"one Kubernetes version ({', '.join(catalog.K8S_VERSIONS)}); "
                        "default: all of them as a matrix")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def _checks(req: Requirement) -> list[dict[str, str]]:
    return [{"check_id": c.check_id, "step": c.step, "probe": c.probe.value, "title": c.title}
            for c in catalog.checks_for(req.id)]


def _own(spec: CheckSpec) -> dict[str, Any]:
    metrics = [{"name": m.name, "unit": m.unit, "direction": m.direction.value} for m in spec.metrics]
    return {"check_id": spec.check_id, "step": spec.step, "level": spec.level.value,
            "probe": spec.probe.value, "title": spec.title, "metrics": metrics}


def _requirement(r: Requirement, versions: list[str]) -> dict[str, Any]:
    levels = {v: (lv.value if (lv := r.level(v)) else None) for v in versions}
    shown: dict[str, Any] = {"level": levels[versions[0]]} if len(versions) == 1 else {"levels": levels}
    return {"id": r.id, "category": r.category, "title": r.title, **shown, "checks": _checks(r)}


def document(version: str | None) -> dict[str, Any]:
    """What the command prints, as data (pure)."""
    versions = [version] if version else list(catalog.K8S_VERSIONS)
    reqs = [r for r in catalog.REQUIREMENTS if any(r.level(v) for v in versions)]
    return {
        "k8s_versions": versions,
        "requirements": [_requirement(r, versions) for r in reqs],
        "kaic_checks": [_own(c) for c in catalog.CHECKS.values() if c.requirement_id is None],
    }


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip(),
            *(fmt.format(*r).rstrip() for r in rows)]


def render_table(doc: dict[str, Any]) -> str:
    versions: list[str] = doc["k8s_versions"]
    single = len(versions) == 1
    level_cols = ["level"] if single else [f"v{v}" for v in versions]
    rows = []
    for r in doc["requirements"]:
        levels = [r["level"]] if single else [lv or "-" for lv in r["levels"].values()]
        checks = ", ".join(f"{c['check_id']} ({c['probe']})" for c in r["checks"]) or "-"
        rows.append([r["id"], r["category"], *levels, r["title"], checks])
    title = f"CNCF AI Conformance v{versions[0]}" if single else "CNCF AI Conformance, levels by version"
    out = [f"{title}: {len(rows)} requirements", "",
           *_table(["id", "category", *level_cols, "title", "kaic checks (probe)"], rows), "",
           "kaic's own checks (no CNCF id):", ""]
    own = [[c["check_id"], c["step"], c["level"], c["probe"],
            ", ".join(f"{m['name']} [{m['unit']}]" for m in c["metrics"]) or "-"] for c in doc["kaic_checks"]]
    out += _table(["check", "step", "level", "probe", "metrics"], own)
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    version = catalog.check_k8s_version(args.k8s_version) if args.k8s_version is not None else None
    doc = document(version)
    print(json.dumps(doc, indent=2) if args.format == "json" else render_table(doc).rstrip("\n"))
    return 0
