"""The renderers: junit.xml, results.json, e2e.log, summary.md, report.html, from a realistic run."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kaic import SUITE_VERSION, reports
from kaic.profiles import load_profile
from kaic.reports import e2e_log, html, junit, markdown, results_json
from kaic.reports.model import Report, Verdict, default_k8s_version, verdict_of
from kaic.results import Outcome, ResultRow, RunContext, Status, counts, exit_code
from kaic.stepkit import stamp

pytestmark = pytest.mark.unit

RUN_ID = "kaic-20260301-020000-abc123"
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
P, F, S, E = Status.PASSED, Status.FAILED, Status.SKIPPED, Status.ERROR

# A run on an EKS cluster as the steps would report it: some passed, some failed, many skipped.
OUTCOMES: dict[str, list[Outcome]] = {
    "provision": [
        Outcome("provision.fingerprint", P, "eks, 2 nodes, Kubernetes v1.35.2-eks.9"),
        Outcome("provision.accelerators", P, "8 x NVIDIA H100 80GB HBM3, driver 580.159.04",
                metric="accelerator_count", value=8.0, unit="devices"),
        Outcome("provision.dra_apis", P, "resource.k8s.io/v1 serves DeviceClass, ResourceClaim, "
                "ResourceClaimTemplate, ResourceSlice; 1 DeviceClass, 2 ResourceSlices"),
        Outcome("provision.driver_versions", S, "unverified: nvidia.com/cuda.driver.major=580 on 2 nodes; missing: a "
                "pod comparing the driver it sees with the advertised one"),
        Outcome("provision.gpu_sharing", S, "no MIG, time-slicing or partitionable devices advertised"),
        Outcome("provision.vgpu", S, "no vGPU products in node labels or device attributes"),
        Outcome("provision.gateway_api", F, "Gateway API CRDs served but no GatewayClass is Accepted"),
        Outcome("provision.gang_scheduler", S, "unverified: kueue-controller-manager Running (kueue.x-k8s.io/v1beta1); "
                "missing: a gang admitted together"),
        Outcome("provision.gang_admission", S, "active probes disabled by the profile"),
        Outcome("provision.cluster_autoscaler", S, "unverified: Karpenter NodePool gpu (nvidia.com/gpu) Ready; "
                "missing: N+1 scale-up"),
        Outcome("provision.metrics_apis", S, "cannot list APIService objects: forbidden"),
        Outcome("provision.accelerator_exporter", E, "timed out after 30s listing DaemonSets"),
        Outcome("provision.service_monitoring", S, "no Prometheus operator CRDs found"),
        Outcome("provision.device_plugin", S, "unverified: nvidia-device-plugin-daemonset Running on 2 nodes; "
                "missing: isolation probes"),
        Outcome("provision.accelerator_pod", P, "pod with 1 nvidia.com/gpu Running after 3.1s"),
        Outcome("provision.device_isolation", F, "pod b saw 2 devices, expected 1"),
        Outcome("provision.disaggregated_inference", S, "needs a vendor attestation"),
        Outcome("provision.ai_operator", S, "no AI operator CRDs (Kubeflow Trainer, KubeRay) registered"),
    ],
    "data": [
        Outcome("data.expectations", P, "12 expectations met"),
        Outcome.measured("data.read_throughput", "data_read_mb_per_s", 412.5, "MB/s"),
    ],
    "train": [
        Outcome("train.allreduce_correct", P, "sums match on 2 ranks"),
        Outcome.measured("train.allreduce_busbw", "allreduce_busbw_gbps@1MiB", 3.2, "GB/s"),
        Outcome("train.holdout_accuracy", P, "", metric="holdout_accuracy", value=0.93, unit="ratio"),
        Outcome("train.resume", F, "resumed weights differ from the uninterrupted run | max abs diff 1e-3"),
    ],
    "serve": [
        Outcome("serve.ready", P, "", metric="serve_time_to_ready_s", value=4.2, unit="s"),
        Outcome("serve.service_metrics", P, "request_count and request_latency exposed on /metrics"),
        Outcome("serve.metrics_collected", P, "prometheus: sum(request_predict_seconds_count) = 2800"),
        Outcome("serve.gateway_route", S, "no Accepted GatewayClass to route through"),
        Outcome.measured("serve.latency", "serve_p99_ms@c16", 18.75, "ms"),
    ],
    "teardown": [Outcome("teardown.deleted", P, "0 objects left with kaic.dev/run-id")],
}


def sample_rows(k8s_version: str = "v1.35.2-eks.9", run_id: str = RUN_ID) -> list[ResultRow]:
    """Real `ResultRow`s, stamped by the step harness (catalog levels, the profile's thresholds)."""
    ctx = RunContext(run_id, SUITE_VERSION, T0, "eks", "gpu-cluster-1", k8s_version, "NVIDIA H100 80GB HBM3")
    profile = load_profile("eks")
    rows: list[ResultRow] = []
    for n, (step, outcomes) in enumerate(OUTCOMES.items()):
        at = T0 + timedelta(minutes=3 * (n + 1))
        rows += [replace(r, recorded_at=at) for r in stamp(outcomes, ctx, step, profile)]
    return rows


@pytest.fixture
def report() -> Report:
    rows = sample_rows()
    return Report.build(rows, default_k8s_version(rows))


def test_report_model_derives_status_and_verdicts(report: Report) -> None:
    assert report.k8s_version == "1.35"
    assert report.status is Status.FAILED  # train.resume is a MUST that failed
    assert report.counts == counts(report.rows)
    verdicts = {s.id: s.verdict for s in report.requirements}
    assert verdicts["dra_support"] is Verdict.VERIFIED
    assert verdicts["ai_inference"] is Verdict.FAILED  # read probe failed, route skipped
    assert verdicts["secure_accelerator_access"] is Verdict.PARTIAL  # a claimed pod got its GPU, isolation failed
    assert verdicts["gang_scheduling"] is Verdict.UNVERIFIED  # Kueue Running is presence, not admission
    assert verdicts["cluster_autoscaling"] is Verdict.UNVERIFIED
    assert verdicts["accelerator_metrics"] is Verdict.ERROR
    assert verdicts["gpu_sharing"] is Verdict.UNVERIFIED
    assert verdicts["disaggregated_inference"] is Verdict.UNVERIFIED  # attestation skipped
    assert verdicts["ai_service_metrics"] is Verdict.VERIFIED  # the cluster's Prometheus collected them
    assert verdicts["high_performance_networking"] is Verdict.NOT_CHECKED
    assert [s.id for s in report.listed] == [
        "dra_support", "driver_runtime_management", "gpu_sharing", "virtualized_accelerator",
        "ai_inference", "gang_scheduling", "cluster_autoscaling", "pod_autoscaling", "accelerator_metrics",
        "ai_service_metrics", "secure_accelerator_access", "robust_controller",
    ]


def test_an_attestation_or_a_measurement_alone_verifies_nothing() -> None:
    row = sample_rows()[0]
    attest = replace(row, check_id="provision.disaggregated_inference", status=P)
    assert verdict_of([attest]) is Verdict.UNVERIFIED
    assert verdict_of([]) is Verdict.NOT_CHECKED


def test_a_read_pass_proves_only_a_read_only_plan() -> None:
    row = sample_rows()[0]
    # an old-style READ 'passed' for gang scheduling (CRDs + controller) is not behaviour: unverified
    assert verdict_of([replace(row, check_id="provision.gang_scheduler", status=P)]) is Verdict.UNVERIFIED
    assert verdict_of([replace(row, check_id="provision.dra_apis", status=P)]) is Verdict.VERIFIED  # KAR-0051
    assert verdict_of([replace(row, check_id="provision.gang_admission", status=P)]) is Verdict.VERIFIED


def test_rejudging_at_136_drops_dra_support() -> None:
    rows = [replace(r, status=F) if r.check_id == "provision.dra_apis" else r for r in sample_rows()]
    at135 = Report.build(rows, "1.35")
    assert any(r.check_id == "provision.dra_apis" and r.level.value == "MUST" for r in at135.rows)
    at136 = Report.build(rows, "1.36")
    dra = next(r for r in at136.rows if r.check_id == "provision.dra_apis")
    assert dra.level.value == "INFO"  # 1.36 does not list dra_support: re-derived, not the stamped MUST
    assert "dra_support" not in {s.id for s in at136.listed}


def test_a_local_run_with_no_verifiable_must_says_no_cncf_verdict() -> None:
    rows = [r for r in sample_rows() if r.status is not F and r.requirement_id is None]
    rows += [replace(sample_rows()[0], check_id="provision.device_plugin", requirement_id="secure_accelerator_access",
                     status=S, message="no Kubernetes cluster (local platform)")]
    local = Report.build(rows, "1.35")
    assert local.status is Status.PASSED
    assert local.cncf_verdict == "no CNCF verdict"
    assert local.headline == "no CNCF verdict"
    assert "no CNCF verdict" in html.render(local)
    assert "PASSED" not in markdown.render(local).split("\n")[2]


def test_submission_junit_holds_the_cncf_requirements_only(report: Report) -> None:
    root = ET.fromstring(junit.render(report))
    suite = root.find("testsuite")
    assert suite is not None
    cases = {x.get("name"): x for x in suite.findall("testcase")}
    assert len(cases) == len(report.listed) == int(suite.get("tests", "-1"))
    assert "TestSecureAcceleratorAccess" in cases  # the upstream test's name
    assert cases["TestSecureAcceleratorAccess"].find("failure") is not None  # partial: isolation failed
    assert cases["dra_support"].find("system-out") is not None  # verified
    assert cases["gang_scheduling"].find("skipped") is not None  # unverified
    assert not any(n and n.startswith(("train.", "data.", "serve.ready")) for n in cases)


def test_junit_parses_and_counts_match(report: Report) -> None:
    root = ET.fromstring(junit.render_full(report))
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    c = report.counts
    assert len(cases) == len(report.rows) == int(suite.get("tests", "-1")) == int(root.get("tests", "-1"))
    for attr, key, child in (("failures", "failed", "failure"), ("errors", "error", "error"),
                             ("skipped", "skipped", "skipped")):
        with_child = [x for x in cases if x.find(child) is not None]
        assert int(suite.get(attr, "-1")) == int(root.get(attr, "-1")) == c[key] == len(with_child)
    names = {(x.get("classname"), x.get("name")) for x in cases}
    assert ("train", "train.holdout_accuracy[holdout_accuracy]") in names
    assert ("provision", "provision.dra_apis") in names
    gateway = next(x for x in cases if x.get("name") == "provision.gateway_api")
    failure = gateway.find("failure")
    assert failure is not None
    assert "no GatewayClass is Accepted" in failure.get("message", "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run_id"] == RUN_ID
    assert props["k8s_version"] == "v1.35.2-eks.9"
    assert props["run_status"] == "failed"
    assert float(suite.get("time", "-1")) == pytest.approx(15 * 60)


def test_results_json_has_metadata_counts_rows_and_requirements(report: Report) -> None:
    doc = json.loads(results_json.render(report))
    assert doc["run"]["run_id"] == RUN_ID
    assert doc["run"]["started_at"] == T0.isoformat()
    assert doc["status"] == "failed"
    assert doc["exit_code"] == exit_code(report.rows) == 1
    assert doc["counts"] == report.counts
    assert len(doc["rows"]) == len(report.rows)
    assert all(datetime.fromisoformat(r["recorded_at"]) for r in doc["rows"])
    req = {r["id"]: r for r in doc["requirements"]}
    assert len(req) == 16
    assert req["secure_accelerator_access"]["verdict"] == "partial"
    assert req["workload_sandboxing"]["level"] is None  # not listed at 1.35
    assert {c["name"] for c in req["gang_scheduling"]["checks"]} == {"provision.gang_scheduler",
                                                                    "provision.gang_admission"}


def test_e2e_log_one_line_per_check_and_a_summary(report: Report) -> None:
    lines = e2e_log.render(report).splitlines()
    checks = [ln for ln in lines if re.match(r"^(PASS|FAIL|SKIP|ERROR) ", ln)]
    assert len(checks) == len(report.rows)
    c = report.counts
    assert lines[-1] == (f"kaic run {RUN_ID}: {c['passed']} passed, {c['failed']} failed, "
                         f"{c['skipped']} skipped, {c['error']} errors; run status: failed")
    assert any(ln.startswith("FAIL  train train.resume [-] MUST - resumed weights differ") for ln in checks)
    assert any(ln.startswith("PASS  train train.holdout_accuracy[holdout_accuracy] [-] MUST value=0.93ratio")
               for ln in checks)


def test_summary_md_lists_failed_checks_first(report: Report) -> None:
    text = markdown.render(report)
    assert "**Run status: FAILED**" in text
    table = text.split("## Checks (failed first)")[1].split("## Metrics")[0]
    statuses = [ln.split("|")[1].strip() for ln in table.splitlines() if ln.startswith("| ") and "`" in ln]
    c = report.counts
    assert statuses[: c["failed"] + c["error"]] == ["**FAIL**"] * c["failed"] + ["**ERROR**"] * c["error"]
    assert "| secure_accelerator_access | security | MUST | partial |" in text
    assert "resumed weights differ from the uninterrupted run \\| max abs diff" in text  # pipes escaped
    assert "`serve_p99_ms@c16`" in text.split("## Metrics")[1]


def test_html_is_self_contained_and_has_the_matrix(report: Report) -> None:
    page = html.render(report)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page
    assert "@import" not in page
    assert "url(" not in page
    assert "<style>" in page
    assert page.startswith("<!DOCTYPE html>")
    matrix = page.split('<table class="matrix">')[1].split("</table>")[0]
    assert matrix.count("<tr>") == 1 + 16  # header + every requirement
    for v in ("v1.33", "v1.34", "<u>v1.35</u>", "v1.36", "v1.37"):
        assert v in matrix
    assert '<span class="badge partial">partial</span>' in matrix
    assert RUN_ID in page
    assert "gpu-cluster-1" in page


def test_html_escapes_what_rows_say(report: Report) -> None:
    evil = replace(report.rows[0], message='<img src="https://example.com/x.png"> & more')
    page = html.render(Report.build([evil, *report.rows[1:]], "1.35"))
    assert "<img" not in page
    assert "&lt;img src=&quot;https://example.com/x.png&quot;&gt; &amp; more" in page


def test_render_all_writes_every_file_name_the_validator_reads(report: Report, tmp_path: Path) -> None:
    files = reports.render(report, ["all"], tmp_path)
    assert set(files) == {"junit.xml", "junit-full.xml", "results.json", "e2e.log", "summary.md", "report.html",
                          "PRODUCT.yaml"}
    assert reports.expand_formats(["md", "junit", "md"]) == ["junit", "md"]


def test_default_version_follows_the_cluster_else_135() -> None:
    assert default_k8s_version(sample_rows("v1.34.1")) == "1.34"
    assert default_k8s_version(sample_rows("")) == "1.35"
    old = [replace(r, k8s_version="1.29.0") for r in sample_rows()]
    assert default_k8s_version(old) == "1.35"  # no template for 1.29: the default


def test_many_rows_of_one_check_fold_into_one_line_with_a_sub_table() -> None:
    base = sample_rows()
    expectation = next(r for r in base if r.check_id == "data.expectations")
    many = [replace(expectation, message=f"expect_{i}: met") for i in range(135)]
    many[7] = replace(many[7], status=F, message="expect_7: NOT met")
    report = Report.build([r for r in base if r.check_id != "data.expectations"] + many, "1.35")
    page = html.render(report)
    checks = page.split("<h2>Checks</h2>")[1].split("<h2>Metrics</h2>")[0]
    assert checks.count("<code>data.expectations</code>") == 1
    assert "135 results: 134 passed, 1 failed" in checks
    assert "<details>" in checks
    assert "expect_7: NOT met" in checks
    text = markdown.render(report)
    assert text.count("`data.expectations` (folded, below)") == 1
    assert "### `data.expectations` (135 results: 134 passed, 1 failed)" in text
    assert len(ET.fromstring(junit.render_full(report)).findall("testsuite/testcase")) == len(report.rows)


def test_html_draws_the_loss_curve_latency_by_concurrency_and_the_timeline() -> None:
    rows = sample_rows()
    train = next(r for r in rows if r.step == "train")
    serve = next(r for r in rows if r.step == "serve")
    extra = [replace(train, check_id="train.loss_curve", metric=f"loss_curve@step{k}", value=2.3 / (k + 1),
                     unit="loss") for k in range(10)]
    extra += [replace(serve, check_id="serve.latency", metric=f"serve_{q}_ms@c{c}", value=v * c, unit="ms")
              for c in (1, 4, 16) for q, v in (("p50", 1.0), ("p95", 2.0), ("p99", 3.0))]
    page = html.render(Report.build(rows + extra, "1.35"))
    pictures = page.split("<h2>Pictures</h2>")[1].split("<h2>Checks</h2>")[0]
    assert pictures.count("<svg") == 3
    assert 'aria-label="Training loss (first steps)"' in pictures
    assert 'aria-label="Serving latency by concurrency"' in pictures
    for q in ("p50", "p95", "p99"):
        assert f">{q}</text>" in pictures
    assert 'aria-label="Step timeline"' in pictures
    assert "concurrent clients 16: 48 ms" in pictures  # the p99 point at 16 clients
    assert page.index("CNCF AI Conformance v1.35") < page.index("Run status")  # leads with the CNCF section
