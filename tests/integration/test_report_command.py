"""`kaic report RUN`: reads a run's staged (or published) rows from the real stores, writes the files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kaic import env
from kaic.cli import main
from kaic.results import ResultRow
from kaic.stores.objects import open_store
from kaic.stores.results_dataset import ParquetResults
from tests.unit.test_reports import RUN_ID, sample_rows

pytestmark = pytest.mark.integration


def stage(rows: list[ResultRow]) -> ParquetResults:
    sink = ParquetResults(open_store(env.object_store_uri(), "test"), open_store(env.results_uri(), "test"))
    for step in dict.fromkeys(r.step for r in rows):
        sink.stage(rows[0].run_id, step, [r for r in rows if r.step == step])
    return sink


def test_report_writes_the_requested_formats_and_prints_paths(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rows = sample_rows()
    stage(rows)
    out = tmp_path / "out"
    code = main(["report", RUN_ID, "--format", "junit-full", "--format", "e2e", "--out", str(out)])
    assert code == 1  # exit code: the run's status (a MUST failed)
    printed = capsys.readouterr().out.split()
    assert printed == [str(out.resolve() / "junit-full.xml"), str(out.resolve() / "e2e.log")]
    assert len(ET.parse(out / "junit-full.xml").getroot().findall("testsuite/testcase")) == len(rows)
    assert sorted(p.name for p in out.iterdir()) == ["e2e.log", "junit-full.xml"]


def test_report_default_out_and_all_formats(kaic_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stage(sample_rows())
    main(["report", RUN_ID, "--k8s-version", "1.34"])
    out = kaic_home / "runs" / RUN_ID / "report"
    assert {Path(p).name for p in capsys.readouterr().out.split()} == {p.name for p in out.iterdir()} == {
        "junit.xml", "junit-full.xml", "results.json", "e2e.log", "summary.md", "report.html", "PRODUCT.yaml"}
    assert "kubernetesVersion: v1.34" in (out / "PRODUCT.yaml").read_text()


def test_report_reads_a_published_run_when_nothing_is_staged(tmp_path: Path) -> None:
    rows = sample_rows(run_id="kaic-published")
    sink = stage(rows)
    sink.publish("kaic-published")
    store = open_store(env.object_store_uri(), "test")
    for key in store.list("runs/kaic-published/rows/"):
        store.delete(key)
    assert sink.staged("kaic-published") == []
    assert main(["report", "kaic-published", "--format", "json", "--out", str(tmp_path)]) == 1
    assert '"run_id": "kaic-published"' in (tmp_path / "results.json").read_text()


def test_report_with_an_official_template(tmp_path: Path) -> None:
    from tests.conftest import shared_path

    template = shared_path("reference", "cncf-ai-conformance", "templates", "AIConformance-1.36.yaml")
    stage(sample_rows())
    main(["report", RUN_ID, "--format", "product", "--template", str(template), "--out", str(tmp_path),
          "--evidence-base", "results", "--platform-version", "3.1.0"])
    text = (tmp_path / "PRODUCT.yaml").read_text()
    assert "kubernetesVersion: v1.36" in text
    assert "k8sConformanceUrl:" in text
    assert 'platformVersion: "3.1.0"' in text
    assert '- "results/junit.xml"' in text  # ai_service_metrics verified: a path relative to PRODUCT.yaml
    assert "file://" not in text


def test_a_file_evidence_base_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stage(sample_rows())
    assert main(["report", RUN_ID, "--format", "product", "--out", str(tmp_path),
                 "--evidence-base", "file://results"]) == 2
    assert "--evidence-base 'file://results'" in capsys.readouterr().err
    assert not (tmp_path / "PRODUCT.yaml").exists()


@pytest.mark.parametrize(("argv", "expect"), [
    (["kaic-unknown"], "run 'kaic-unknown': unknown run"),
    (["../etc"], "RUN '../etc': not a run id"),
    ([RUN_ID, "--k8s-version", "1.99"], "--k8s-version: unknown Kubernetes version '1.99'"),
    ([RUN_ID, "--k8s-version", "abc"], "--k8s-version: unknown Kubernetes version 'abc'"),
    ([RUN_ID, "--template", "{missing}"], "missing.yaml: cannot read"),
    ([RUN_ID, "--template", "{bad}"], "bad.yaml: not valid YAML"),
    ([RUN_ID, "--template", "{v134}", "--k8s-version", "1.35"], "template is for Kubernetes v1.34"),
    ([RUN_ID, "--format", "pdf"], "invalid choice: 'pdf'"),
])
def test_bad_input_is_exit_2_one_line_and_nothing_written(
    argv: list[str], expect: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stage(sample_rows())
    (tmp_path / "bad.yaml").write_text("metadata: [unclosed\n")
    from kaic.reports import product

    (tmp_path / "v134.yaml").write_text(product.packaged_template("1.34")[0])
    files = {name: tmp_path / f"{name}.yaml" for name in ("missing", "bad", "v134")}
    argv = [a.format(**files) for a in argv]
    out = tmp_path / "out"
    try:
        code: object = main(["report", *argv, "--out", str(out)])
    except SystemExit as exc:  # argparse's usage errors exit from the parser itself
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert expect in captured.err
    assert not out.exists()


def test_rejudging_at_136_drops_dra_support_from_the_exit_code(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    from kaic.results import Status

    rows = [r for r in sample_rows() if r.check_id in ("provision.fingerprint", "provision.dra_apis")]
    rows = [replace(r, status=Status.FAILED) if r.check_id == "provision.dra_apis" else r for r in rows]
    stage(rows)
    assert main(["report", RUN_ID, "--format", "json", "--k8s-version", "1.35", "--out", str(tmp_path)]) == 1
    assert main(["report", RUN_ID, "--format", "json", "--k8s-version", "1.36", "--out", str(tmp_path)]) == 0
    assert "no CNCF verdict" in capsys.readouterr().err  # nothing CNCF at 1.36 was judged
