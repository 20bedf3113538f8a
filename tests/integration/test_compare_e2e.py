"""`kaic compare` over a dataset made by real local runs plus recorded platforms, on disk and on S3.

Real rows: `kaic step provision` then `kaic step report` (which publishes the run) under the platform
name `local`, twice. Recorded rows (no cluster here): eks, gke and aks nightly runs built in
tests/compare_rows.py from real vendor submissions and the H100 reference figures, with one seeded
regression (gke's samples/s 30% down in its latest run).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from kaic.cli import main
from tests.compare_rows import recorded_rows, write_dataset

pytestmark = pytest.mark.integration

REGRESS = {"gke": {"train_samples_per_s": 0.7}}


def real_local_runs(n: int) -> list[str]:
    ids = [f"local-night-{i}" for i in range(n)]
    for run_id in ids:
        for step in ("provision", "report"):
            assert main(["step", step, "--platform", "local", "--run-id", run_id]) in (0, 1)
    return ids


@pytest.fixture
def results(kaic_home: Path) -> Path:
    """$KAIC_HOME/results with 2 real local runs and 3 x 12 recorded nightly runs."""
    real_local_runs(2)
    root = kaic_home / "results"
    assert sorted(p.name for p in root.iterdir()) == ["platform=local"]
    write_dataset(root, recorded_rows(regress=REGRESS))
    return root


def test_compare_prints_matrix_and_ratios_over_real_and_recorded_runs(results: Path, tmp_path: Path) -> None:
    # a real process, as a user runs it
    proc = subprocess.run([sys.executable, "-m", "kaic.cli", "compare", "--baseline", "eks", "--fail-on-regression"],
                          capture_output=True, text=True, timeout=120, env=None)
    out = proc.stdout
    assert proc.returncode == 1, proc.stderr  # the seeded regression
    assert "baseline: eks (chosen with --baseline)" in out
    for platform in ("aks", "eks", "gke", "local"):
        assert platform in out
    assert "skipped MUST" in out  # local: no cluster, the requirement probes skip with a reason
    assert "passed MUST" in out
    assert "REGRESSION gke train_samples_per_s" in out

    assert main(["compare", "--format", "csv", "--out", str(tmp_path / "c.csv")]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "c.csv").read_text())))
    local_runs = {r["run_id"] for r in rows if r["kind"] == "run" and r["group"] == "local"}
    assert local_runs == {"local-night-1"}  # the latest real run
    matrix = {(r["name"], r["group"]): r["status"] for r in rows if r["kind"] == "requirement"}
    assert matrix["secure_accelerator_access", "local"] == "skipped"
    assert matrix["secure_accelerator_access", "eks"] == "passed"
    cpu = {r["group"]: r for r in rows if r["kind"] == "metric" and r["name"] == "cpu_count"}
    assert set(cpu) == {"local"}  # measured by the real provision step only
    assert float(cpu["local"]["value"]) >= 1
    assert cpu["local"]["mark"] == "baseline"  # default baseline: local is present
    samples = {r["group"]: r for r in rows if r["kind"] == "metric" and r["name"] == "train_samples_per_s"}
    assert samples["gke"]["mark"] == "n/a"  # the baseline (local) has no such value


def test_compare_reads_an_s3_dataset(s3_env: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kaic.stores.objects import open_store
    from kaic.stores.results_dataset import ParquetResults

    sink = ParquetResults(open_store(f"file://{tmp_path / 'staging'}", source="test"),
                          open_store("s3://kaic/results", source="test"))
    rows = recorded_rows(nights=4, regress=REGRESS)
    for run_id in sorted({r.run_id for r in rows}):
        sink.stage(run_id, "recorded", [r for r in rows if r.run_id == run_id])
        sink.publish(run_id)
    assert main(["compare", "--results", "s3://kaic/results", "--format", "json", "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert '"groups": [\n    "aks",\n    "eks",\n    "gke"\n  ]' in out
    assert main(["compare", "--results", "s3://kaic/nothing-here"]) == 2
    assert "has no rows" in capsys.readouterr().err
