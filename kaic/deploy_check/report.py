"""Run every offline deployment check and print a short table; exit 1 when any check fails.

Each row: PASS (checked, no problem), FAIL (problems listed below the table), SKIP (could not run here,
with the reason). A SKIP is never counted as a pass.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kaic.deploy_check import ARGO_SCHEMA, CHART, K8S_VERSION, KSERVE_CRD, SHARED


@dataclass
class Row:
    check: str
    status: str  # PASS / FAIL / SKIP
    detail: str
    problems: list[str] = field(default_factory=list)


def _row(check: str, detail: str, problems: list[str]) -> Row:
    return Row(check, "FAIL" if problems else "PASS", detail, problems)


def values_rows(chart: Path) -> list[Row]:
    from kaic.deploy_check import values

    schema = values.schema(chart)
    rows = [_row("values: values.yaml", "values.schema.json (draft 2020-12)",
                 values.problems(values.effective(chart), schema))]
    for f in values.override_files(chart):
        rows.append(_row(f"values: ci/{f.name}", "merged over values.yaml, then the schema",
                         values.problems(values.effective(chart, f), schema)))
    return rows


def chart_rows(chart: Path) -> list[Row]:
    from kaic.deploy_check import chart_files, chart_static, values
    from kaic.deploy_check.generated import generated_manifests

    vals = values.effective(chart)
    refs, ref_problems = chart_static.template_value_refs(chart, values.schema(chart))
    manifests = generated_manifests()
    n_secrets, secret_problems = chart_static.secret_promises(vals, manifests)
    stale = chart_files.stale(chart)
    return [
        _row("chart: Chart.yaml", "apiVersion v2, SemVer, appVersion = kaic", chart_static.chart_yaml(chart)),
        _row("chart: templates' .Values paths", f"{refs} references exist in values.schema.json", ref_problems),
        _row("chart: files/rbac/*.yaml", f"as Role/ClusterRole, Kubernetes {K8S_VERSION} schema",
             chart_static.rbac_files(chart)),
        _row("chart: files/workflows/", "identical to `kaic compile` output (make chart-workflows)",
             [f"stale: {stale[0].strip()} ... ({len(stale)} diff lines; run make chart-workflows)"] if stale else []),
        _row("chart: image defaults", "values.yaml images listed by kaic/images.py", chart_static.images(vals)),
        _row("chart: Secret promises", f"{n_secrets} secret references read kaic-object-store endpoint/accessKey/"
             "secretKey", secret_problems),
        _row("chart: ServiceAccount", "every generated pod runs as the chart's ServiceAccount",
             chart_static.service_account(vals, manifests)),
        _row("chart: generic profile", "MLflow URI and bucket match `helm install kaic -n kaic`",
             chart_static.profile_endpoints(vals)),
    ]


def manifest_rows() -> list[Row]:
    from kaic.deploy_check import pss
    from kaic.deploy_check.generated import generated_manifests
    from kaic.deploy_check.validate import SkippedError, validate

    by_kind: dict[tuple[str, str], list[str]] = {}
    counts: dict[tuple[str, str], int] = {}
    skipped: dict[str, str] = {}
    pods, exempt, pss_problems = 0, [], []
    for label, obj in generated_manifests():
        kind = str(obj.get("kind"))
        try:
            against, problems = validate(obj)
            key = (kind, against)
            counts[key] = counts.get(key, 0) + 1
            by_kind.setdefault(key, []).extend(f"{label}: {p}" for p in problems)
        except SkippedError as exc:
            skipped[kind] = str(exc)
        spec = pss.pod_spec_of(obj)
        if spec is None:
            if kind == "TrainJob":
                exempt.append(label)
            continue
        pods += 1
        pss_problems += [f"{label}: {p}" for p in pss.restricted(spec)]
    rows = [_row(f"manifests: {kind}", f"{counts[(kind, against)]} against {against}", probs)
            for (kind, against), probs in sorted(by_kind.items())]
    rows += [Row(f"manifests: {kind}", "SKIP", why) for kind, why in sorted(skipped.items())]
    rows.append(_row("Pod Security: restricted", f"{pods} pod specs; not checkable: {len(exempt)} TrainJobs (pods "
                     "come from the platform's ClusterTrainingRuntime)", pss_problems))
    return rows


def rbac_rows(chart: Path) -> list[Row]:
    from kaic.deploy_check.drive import NAMESPACE, fixture_nodes, record_run
    from kaic.deploy_check.rbac import coverage, load_rules

    nodes = fixture_nodes(SHARED)
    if nodes is None:
        return [Row("RBAC coverage", "SKIP", "skipped: ../shared absent (the Node fixture the probes run on)")]
    calls = record_run(nodes)
    every = set().union(*calls.values())
    cov = coverage(every, load_rules(chart / "files/rbac/steps-role.yaml"),
                   load_rules(chart / "files/rbac/cluster-read.yaml"), NAMESPACE)
    detail = f"{len(every)} calls ({', '.join(f'{k} {len(v)}' for k, v in calls.items())}): all granted, none extra"
    return [_row("RBAC coverage", detail, cov.problems())]


def find_helm() -> str | None:
    """helm on PATH, else the one the dev cluster builds from its Go module (`make cluster-build`)."""
    from kaic.devcluster.build import HELM

    built = HELM.path("helm")
    return shutil.which("helm") or (str(built) if built.is_file() else None)


def helm_rows(chart: Path) -> list[Row]:
    import subprocess

    helm = find_helm()
    if helm is None:
        return [Row("helm lint / helm template", "SKIP", "helm is neither on PATH nor built (`make cluster-build`): "
                    "helm lint and helm template did not run (the checks above are the offline substitute)")]
    from kaic.deploy_check import values

    # Offline, helm assumes Kubernetes v1.20, which the chart's kubeVersion (>=1.33) refuses: render for the
    # version the manifests are checked against.
    template = ["template", "kaic", str(chart), "-n", "kaic", "--kube-version", K8S_VERSION]
    rows = []
    for args, name in [(["lint", str(chart), "--strict"], "helm lint")] + [
            ([*template, "-f", str(f)], f"helm template -f ci/{f.name}") for f in values.override_files(chart)
    ] + [(template, "helm template (defaults)")]:
        proc = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)
        rows.append(_row(name, "exit 0" if proc.returncode == 0 else f"exit {proc.returncode}",
                         [] if proc.returncode == 0 else (proc.stderr or proc.stdout).strip().splitlines()[-5:]))
    return rows


SECTIONS: tuple[Callable[[Path], list[Row]], ...] = (
    values_rows, chart_rows, lambda _c: manifest_rows(), rbac_rows, helm_rows)


def main(argv: list[str] | None = None) -> int:
    chart = Path(argv[0]) if argv else CHART
    rows: list[Row] = []
    for section in SECTIONS:
        rows += section(chart)
    width = max(len(r.check) for r in rows)
    print(f"offline deployment checks ({chart}; Kubernetes {K8S_VERSION} schemas)")
    for r in rows:
        print(f"  {r.status:<4}  {r.check:<{width}}  {r.detail}")
    if not ARGO_SCHEMA.is_file() or not KSERVE_CRD.is_file():
        print(f"  note: skipped: ../shared absent ({SHARED}): Argo schema and KServe CRD checks did not run")
    failed = [r for r in rows if r.status == "FAIL"]
    for r in failed:
        print(f"\nFAIL {r.check}:")
        for p in r.problems[:20]:
            print(f"  - {p}")
        if len(r.problems) > 20:
            print(f"  ... and {len(r.problems) - 20} more")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
