"""The `report` step end to end: staged rows of a run -> reports on disk and in the object store, the run
published to the results dataset, reports on the MLflow parent run, exit code = the whole run's status."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kaic import env
from kaic.cli import main
from kaic.results import ResultRow, RunContext, Status, exit_code
from kaic.stores.objects import open_store
from kaic.stores.results_dataset import ParquetResults, rows_for_run
from tests.unit.test_reports import RUN_ID, sample_rows

pytestmark = pytest.mark.integration

FILES = {"junit.xml", "junit-full.xml", "results.json", "e2e.log", "summary.md", "report.html", "PRODUCT.yaml"}


def stage(rows: list[ResultRow]) -> ParquetResults:
    sink = ParquetResults(open_store(env.object_store_uri(), "test"), open_store(env.results_uri(), "test"))
    for step in dict.fromkeys(r.step for r in rows):
        sink.stage(rows[0].run_id, step, [r for r in rows if r.step == step])
    return sink


@pytest.fixture(autouse=True)
def only_the_report_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """`kaic step` configures every registered step; the others are not under test here."""
    import kaic.commands.step

    monkeypatch.setattr(kaic.commands.step, "STEPS", {"report": "steps.report"})


def test_report_step_writes_uploads_publishes_and_exits_by_the_run(
    kaic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = sample_rows()
    sink = stage(rows)
    code = main(["step", "report", "--run-id", RUN_ID, "--profile", "local", "--platform", "eks"])
    assert code == exit_code(rows) == 1  # a MUST failed in an earlier step
    out_dir = kaic_home / "runs" / RUN_ID / "report"
    assert f"report: {out_dir / 'report.html'}" in capsys.readouterr().out.splitlines()
    assert {p.name for p in out_dir.iterdir()} == FILES  # no temp files left behind
    store = open_store(env.object_store_uri(), source="test")
    assert set(store.list(f"runs/{RUN_ID}/report/")) == {f"runs/{RUN_ID}/report/{f}" for f in FILES}
    assert store.get_bytes(f"runs/{RUN_ID}/report/junit.xml") == (out_dir / "junit.xml").read_bytes()
    # published: every step's rows are in the dataset, plus the report step's regression judgements,
    # which are skipped here: the platform has no published history yet
    published = rows_for_run(env.results_uri(), RUN_ID)
    own = [r for r in published if r.step == "report"]
    assert sorted(r.name for r in published if r.step != "report") == sorted(r.name for r in rows)
    assert own
    assert {r.check_id for r in own} == {"report.regression"}
    assert all(r.status.value == "skipped" and "history" in r.message for r in own), own[0].message
    assert {r.name for r in sink.staged(RUN_ID) if r.step == "report"} == {r.name for r in own}
    # the full junit lists every row, the report step's own included; the submission junit only CNCF ids
    full = (out_dir / "junit-full.xml").read_text()
    assert all(f'name="{r.name}"' in full for r in own)
    assert "report.regression" not in (out_dir / "junit.xml").read_text()
    # the draft is for the cluster's version, with evidence pointing at the files that exist
    draft = yaml.safe_load((out_dir / "PRODUCT.yaml").read_text())
    assert draft["metadata"]["kubernetesVersion"] == "v1.35"
    dra = draft["spec"]["accelerators"][0]
    assert dra["status"] == "Implemented"
    for link in dra["evidence"]:  # as the CNCF validator resolves them: relative to PRODUCT.yaml's folder
        assert "://" not in link
        assert "#" not in link
        assert (out_dir / link).is_file()
    # MLflow: the reports are artifacts of the run's parent run
    from mlflow import MlflowClient

    from kaic.tracking import MlflowTracker

    tracker = MlflowTracker(env.mlflow_uri())
    tracker.connect()
    ctx = RunContext(RUN_ID, rows[0].suite_version, rows[0].started_at, "eks")
    parent = tracker.parent_run(ctx)
    logged = {Path(a.path).name for a in MlflowClient(env.mlflow_uri()).list_artifacts(parent, "reports")}
    assert logged == FILES


def test_a_passing_run_exits_0_and_a_run_without_cluster_drafts_135(
    kaic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [replace(r, k8s_version="", cluster="") for r in sample_rows(run_id="kaic-pass")
            if r.status in (Status.PASSED, Status.SKIPPED)]
    stage(rows)
    assert main(["step", "report", "--run-id", "kaic-pass", "--profile", "local"]) == 0
    out_dir = kaic_home / "runs" / "kaic-pass" / "report"
    assert f"report: {out_dir / 'report.html'}" in capsys.readouterr().out
    draft = yaml.safe_load((out_dir / "PRODUCT.yaml").read_text())
    assert draft["metadata"]["kubernetesVersion"] == "v1.35"
    assert draft["metadata"]["platformVersion"] == "[Platform Version]"  # no cluster, nothing to say


def test_report_step_k8s_version_flag_picks_the_template(kaic_home: Path) -> None:
    stage(sample_rows(run_id="kaic-v137"))
    code = main(["step", "report", "--run-id", "kaic-v137", "--profile", "local", "--k8s-version", "1.37"])
    assert code == 1
    draft = yaml.safe_load((kaic_home / "runs" / "kaic-v137" / "report" / "PRODUCT.yaml").read_text())
    assert draft["metadata"]["kubernetesVersion"] == "v1.37"
    assert "workload_sandboxing" in {i["id"] for items in draft["spec"].values() for i in items}


@pytest.mark.parametrize(("argv", "expect"), [
    (["--k8s-version", "1.99"], "--k8s-version: unknown Kubernetes version '1.99'"),
    (["--template", "/nonexistent/t.yaml"], "--template /nonexistent/t.yaml: cannot read"),
    ([], "run 'kaic-nothing': no staged rows to report on"),
])
def test_report_step_bad_input_is_exit_2_and_writes_nothing(
    argv: list[str], expect: str, kaic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["step", "report", "--run-id", "kaic-nothing", "--profile", "local", *argv]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("kaic: error:")]
    assert len(errors) == 1
    assert expect in errors[0]
    assert not (kaic_home / "runs" / "kaic-nothing" / "report").exists()
