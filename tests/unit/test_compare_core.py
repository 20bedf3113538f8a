"""The comparison core over small hand-made tables and the recorded three-platform fixture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kaic.catalog import Direction
from kaic.compare.core import compare
from kaic.compare.dataset import normalize
from kaic.errors import ConfigError
from kaic.results import Level, ResultRow, Status
from tests.compare_rows import recorded_rows, rows_table

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 2, tzinfo=UTC)
SAA, MUST = "secure_accelerator_access", Level.MUST


def row(platform: str, night: int, check_id: str = "train.throughput", status: Status = Status.PASSED,
        metric: str | None = None, value: float | None = None, requirement_id: str | None = None,
        level: Level = Level.INFO, evidence: str | None = None, message: str = "",
        k8s: str = "1.35") -> ResultRow:
    return ResultRow(run_id=f"{platform}-{night}", suite_version="0.1.0",
                     started_at=T0 + timedelta(days=night), platform=platform, cluster=f"{platform}-cluster",
                     k8s_version=k8s, accelerator="H100", step=check_id.split(".")[0], check_id=check_id,
                     requirement_id=requirement_id, level=level, status=status, metric=metric, value=value,
                     unit="u" if metric else None, message=message, evidence=evidence)


def table(rows: list[ResultRow]):  # type: ignore[no-untyped-def]
    return normalize(rows_table(rows))


def test_matrix_takes_the_latest_run_and_the_worst_check_per_requirement() -> None:
    rows = [
        # eks: night 0 failed, night 1 (latest) passes both checks
        row("eks", 0, "provision.device_plugin", Status.FAILED, requirement_id=SAA, level=MUST),
        row("eks", 1, "provision.device_plugin", requirement_id=SAA, level=MUST),
        row("eks", 1, "provision.accelerator_pod", requirement_id=SAA, level=MUST),
        # gke latest: one passed, one failed -> failed, with the failing check's message
        row("gke", 1, "provision.device_plugin", requirement_id=SAA, level=MUST),
        row("gke", 1, "provision.accelerator_pod", Status.FAILED, requirement_id=SAA, level=MUST,
            message="pod stuck Pending"),
        row("gke", 1, "provision.gang_scheduler", Status.SKIPPED, requirement_id="gang_scheduling",
            level=Level.MUST, message="no gang scheduler"),
    ]
    c = compare(table(rows))
    cells = c.matrix["secure_accelerator_access"]
    assert (cells["eks"].status, cells["eks"].checks, cells["eks"].level) == ("passed", 2, "MUST")
    assert (cells["gke"].status, cells["gke"].message) == ("failed", "pod stuck Pending")
    assert c.matrix["gang_scheduling"]["gke"].status == "skipped"
    assert "eks" not in c.matrix["gang_scheduling"]  # not evaluated there
    assert c.requirements == ("gang_scheduling", "secure_accelerator_access")  # catalog order
    assert c.runs["eks"].run_id == "eks-1"
    assert c.runs["eks"].runs_in_window == 2


def test_ratios_are_direction_aware_and_against_the_baseline() -> None:
    rows = []
    for p, samples, step_ms in (("aks", 100.0, 10.0), ("eks", 120.0, 12.0), ("gke", 100.5, 8.0)):
        rows.append(row(p, 0, metric="train_samples_per_s", value=samples))
        rows.append(row(p, 0, metric="train_step_time_ms", value=step_ms))
        rows.append(row(p, 0, "provision.cpu_memory", metric="cpu_count", value=8.0))
    c = compare(table(rows))
    assert (c.baseline, c.baseline_reason) == ("aks", "default: first alphabetically (no 'local' runs)")
    m = {r.metric: r for r in c.metrics}
    assert m["train_samples_per_s"].direction is Direction.HIGHER
    assert m["train_samples_per_s"].ratios["eks"] == pytest.approx(1.2)
    assert m["train_samples_per_s"].marks == {"aks": "baseline", "eks": "better", "gke": "same"}
    # lower is better
    assert m["train_step_time_ms"].marks == {"aks": "baseline", "eks": "worse", "gke": "better"}
    assert m["cpu_count"].marks["eks"] == ""  # no direction: ratio shown, no verdict
    assert m["cpu_count"].ratios["eks"] == 1.0
    c2 = compare(table(rows), baseline="eks")
    assert c2.baseline_reason == "chosen with --baseline"
    assert {r.metric: r for r in c2.metrics}["train_samples_per_s"].marks["aks"] == "worse"


def test_local_is_the_default_baseline_when_present() -> None:
    rows = [row(p, 0, metric="train_samples_per_s", value=1.0) for p in ("aks", "local", "eks")]
    assert compare(table(rows)).baseline == "local"


def test_a_metric_repeated_in_one_run_is_averaged_and_missing_values_stay_missing() -> None:
    rows = [row("eks", 0, metric="train_samples_per_s", value=v) for v in (100.0, 110.0)]
    rows.append(row("gke", 0, metric="train_mfu", value=0.2))
    rows.append(row("gke", 0, "train.tensorflow", Status.SKIPPED))  # no value at all
    c = compare(table(rows))
    m = {r.metric: r for r in c.metrics}
    assert m["train_samples_per_s"].values == {"eks": 105.0, "gke": None}
    assert m["train_mfu"].ratios["gke"] is None  # baseline eks has no value for it
    assert m["train_mfu"].marks["gke"] == "n/a"


def test_windows_since_and_last() -> None:
    rows = [row(p, n, metric="train_samples_per_s", value=100.0 + n)
            for p in ("eks", "gke") for n in range(6)]
    c = compare(table(rows), last=2)
    assert c.runs["eks"].runs_in_window == 2
    assert "last 2 run(s) per group" in c.window
    c = compare(table(rows), since=T0 + timedelta(days=4))
    assert c.runs["gke"].runs_in_window == 2
    assert c.runs["gke"].run_id == "gke-5"
    with pytest.raises(ConfigError, match="--since 2027-01-01"):
        compare(table(rows), since=datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError, match="--last 0"):
        compare(table(rows), last=0)


def test_bad_baseline_and_group_column_are_config_errors() -> None:
    t = table([row("eks", 0, metric="train_mfu", value=0.2)])
    with pytest.raises(ConfigError, match=r"--baseline 'nope': not in the results \(have: eks\)"):
        compare(t, baseline="nope")
    with pytest.raises(ConfigError, match="--by 'zone'"):
        compare(t, by="zone")


def test_group_by_accelerator() -> None:
    rows = [row("eks", 0, metric="train_mfu", value=0.2), row("gke", 0, metric="train_mfu", value=0.3)]
    c = compare(table(rows), by="accelerator")
    assert c.groups == ("H100",)
    assert c.runs["H100"].run_id in {"eks-0", "gke-0"}  # same start time: ties broken by run id
    assert c.runs["H100"].run_id == "gke-0"


def test_driver_is_taken_from_provision_evidence_or_message() -> None:
    rows = [
        row("eks", 0, "provision.accelerators", evidence='{"gpus": [{"driver_version": "580.159.04"}]}'),
        row("gke", 0, "provision.driver_versions", requirement_id="driver_runtime_management",
            message="nvidia driver 570.86.15, CUDA 12.8"),
        row("aks", 0, "provision.fingerprint"),
    ]
    c = compare(table(rows))
    assert c.runs["eks"].driver == "580.159.04"
    assert c.runs["gke"].driver == "570.86.15"
    assert c.runs["aks"].driver == ""


def test_recorded_three_platforms_with_a_seeded_regression() -> None:
    rows = recorded_rows(regress={"gke": {"train_samples_per_s": 0.7}})
    c = compare(table(rows))
    assert c.groups == ("aks", "eks", "gke")
    assert all(r.runs_in_window == 12 for r in c.runs.values())
    assert {(r.group, r.metric) for r in c.regressed} == {("gke", "train_samples_per_s")}
    judged = {(r.group, r.metric) for r in c.regressions}
    assert ("eks", "accelerator_count") not in judged  # no direction, not judged
    assert len(judged) == 3 * 5
    assert c.matrix["ai_inference"]["eks"].status == "passed"  # from EKS's real submission
    assert c.runs["aks"].driver == "580.159.04"
    assert c.history is not None
    assert c.history.num_rows == 3 * 12 * 5
    data = c.to_dict()
    assert data["regressions"][0]["status"] in {"passed", "failed", "skipped"}
    assert data["metrics"][0]["metric"] == "accelerator_count"
