"""MLflow tracking for real: a sqlite store and a real `mlflow server` process, queried back with
MlflowClient; an unreachable server (a closed port) costs a warning, and `kaic sync` backfills later."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kaic.cli import main
from kaic.results import Level, Outcome, ResultRow, RunContext, Status
from kaic.stores import Tracker
from kaic.stores.objects import FileStore
from kaic.stores.results_dataset import ParquetResults, read_parquet_bytes
from kaic.tracking import MlflowTracker, metric_name

pytestmark = pytest.mark.integration

T0 = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)


def ctx(run_id: str, **fingerprint: str) -> RunContext:
    return RunContext(run_id, "0.1.0", T0, "local", **fingerprint)


def row(run_id: str, step: str, check: str, status: Status = Status.PASSED, level: Level = Level.MUST,
        metric: str | None = None, value: float | None = None, offset: int = 0) -> ResultRow:
    return ResultRow(run_id=run_id, suite_version="0.1.0", started_at=T0, platform="local", cluster="laptop",
                     k8s_version="1.35", accelerator="cpu", step=step, check_id=check, requirement_id=None,
                     level=level, status=status, metric=metric, value=value, unit="GB/s" if metric else None,
                     recorded_at=T0 + timedelta(seconds=offset))


def provision_rows(run_id: str) -> list[ResultRow]:
    return [row(run_id, "provision", "provision.fingerprint"),
            row(run_id, "provision", "provision.capacity", level=Level.INFO, metric="cpu_count", value=2.0)]


def train_rows(run_id: str, ok: bool = True) -> list[ResultRow]:
    return [
        row(run_id, "train", "train.allreduce", level=Level.INFO, metric="allreduce_busbw_gbps@64MiB",
            value=1.25, offset=10),
        row(run_id, "train", "train.allreduce", level=Level.INFO, metric="allreduce_busbw_gbps@1MiB",
            value=0.5, offset=11),
        row(run_id, "train", "train.holdout_accuracy", status=Status.PASSED if ok else Status.FAILED,
            metric="holdout_accuracy", value=0.97 if ok else 0.2, offset=12),
        row(run_id, "train", "train.mfu", status=Status.SKIPPED, level=Level.INFO, offset=13),
    ]


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def runs_of(uri: str, run_id: str) -> tuple[Any, list[Any]]:
    """(parent, active children) of a kaic run, as MLflow has them."""
    c = client(uri)
    exp = c.get_experiment_by_name("kaic")
    runs = c.search_runs([exp.experiment_id], filter_string=f"tags.`kaic.run_id` = '{run_id}'")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.data.tags for r in runs]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == len(runs) - 1
    return parents[0], sorted(children, key=lambda r: r.info.run_name)


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    # One database for the module: MLflow's first-time schema migration takes seconds.
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def check_layout(uri: str, run_id: str, parent_status: str) -> None:
    parent, children = runs_of(uri, run_id)
    assert parent.info.run_name == run_id
    for tag, want in {"platform": "local", "cluster": "laptop", "k8s_version": "1.35", "accelerator": "cpu",
                      "suite_version": "0.1.0", "kaic.run_id": run_id, "kaic.step": "workflow",
                      "kaic.status": parent_status}.items():
        assert parent.data.tags.get(tag) == want, tag
    assert [c.info.run_name for c in children] == ["provision", "train"]
    prov, train = children
    assert prov.data.tags["kaic.step"] == "provision"
    assert prov.data.tags["kaic.status"] == "passed"
    assert train.data.tags["kaic.status"] == parent_status
    assert train.data.tags["platform"] == "local"
    assert train.data.tags["kaic.run_id"] == run_id
    assert prov.data.metrics["cpu_count"] == 2.0
    assert train.data.metrics[metric_name(train_rows(run_id)[0])] == 1.25
    assert train.data.metrics["allreduce_busbw_gbps/64MiB"] == 1.25
    assert train.data.metrics["allreduce_busbw_gbps/1MiB"] == 0.5
    assert train.data.metrics["checks/skipped"] == 1.0
    assert "train.mfu" not in train.data.metrics  # no value, no metric
    assert train.info.status == ("FINISHED" if parent_status == "passed" else "FAILED")
    c = client(uri)
    assert [a.path for a in c.list_artifacts(train.info.run_id, "rows")] == ["rows/train.parquet"]
    local = c.download_artifacts(train.info.run_id, "rows/train.parquet")
    shard = read_parquet_bytes(Path(local).read_bytes())
    assert shard.column("metric").to_pylist()[0] == "allreduce_busbw_gbps@64MiB"


def test_sqlite_parent_and_children(sqlite_uri: str) -> None:
    run_id = "kaic-sqlite-1"
    # Separate tracker objects, as separate step processes would have: they find the same parent by tags.
    assert MlflowTracker(sqlite_uri).log_step(ctx(run_id), "provision", provision_rows(run_id))
    fp = ctx(run_id, cluster="laptop", k8s_version="1.35", accelerator="cpu")
    assert MlflowTracker(sqlite_uri).log_step(fp, "train", train_rows(run_id, ok=False))
    check_layout(sqlite_uri, run_id, parent_status="failed")
    db = Path(sqlite_uri.removeprefix("sqlite:///"))
    assert (db.parent / "mlartifacts").is_dir()  # artifacts beside the database, not ./mlruns


def test_rerunning_a_step_replaces_its_child(sqlite_uri: str) -> None:
    run_id = "kaic-sqlite-rerun"
    fp = ctx(run_id, cluster="laptop", k8s_version="1.35", accelerator="cpu")
    tracker = MlflowTracker(sqlite_uri)
    assert tracker.log_step(fp, "provision", provision_rows(run_id))
    assert tracker.log_step(fp, "train", train_rows(run_id, ok=False))
    assert tracker.log_step(fp, "train", train_rows(run_id, ok=True))
    check_layout(sqlite_uri, run_id, parent_status="passed")


def test_log_artifacts_on_the_parent(sqlite_uri: str, tmp_path: Path) -> None:
    run_id = "kaic-sqlite-reports"
    report = tmp_path / "junit.xml"
    report.write_text("<testsuites/>")
    tracker = MlflowTracker(sqlite_uri)
    assert tracker.log_step(ctx(run_id), "provision", provision_rows(run_id))
    assert tracker.log_artifacts(ctx(run_id), [report])
    parent, _ = runs_of(sqlite_uri, run_id)
    assert [a.path for a in client(sqlite_uri).list_artifacts(parent.info.run_id, "reports")] == [
        "reports/junit.xml"]


def test_real_mlflow_server(mlflow_server: str) -> None:
    run_id = "kaic-http-1"
    fp = ctx(run_id, cluster="laptop", k8s_version="1.35", accelerator="cpu")
    assert isinstance(MlflowTracker(mlflow_server), Tracker)
    assert MlflowTracker(mlflow_server).log_step(fp, "provision", provision_rows(run_id))
    assert MlflowTracker(mlflow_server).log_step(fp, "train", train_rows(run_id))
    check_layout(mlflow_server, run_id, parent_status="passed")


def test_unreachable_mlflow_then_sync_backfills(mlflow_server: str, closed_port: int, kaic_home: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run_id = "kaic-offline-1"
    down = f"http://127.0.0.1:{closed_port}"
    store = FileStore(kaic_home / "objects")
    sink = ParquetResults(store, FileStore(kaic_home / "results"))
    fp = ctx(run_id, cluster="laptop", k8s_version="1.35", accelerator="cpu")
    for step, rows in (("provision", provision_rows(run_id)), ("train", train_rows(run_id))):
        sink.stage(run_id, step, rows)
        assert MlflowTracker(down).log_step(fp, step, rows) is False
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"kaic: warning: MLflow at {down} not written")
    assert f"kaic sync {run_id}" in warnings[0]
    assert len(sink.staged(run_id)) == 6  # the rows are all there

    argv = ["sync", run_id, "--mlflow-uri", mlflow_server]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "provision: logged 2 rows" in out
    assert "train: logged 4 rows" in out
    check_layout(mlflow_server, run_id, parent_status="passed")
    assert main(argv) == 0  # idempotent: nothing new
    out = capsys.readouterr().out
    assert out.count("already in MLflow") == 2
    check_layout(mlflow_server, run_id, parent_status="passed")  # still one parent, one child per step


def test_sync_reads_the_published_dataset_when_shards_are_gone(sqlite_uri: str, kaic_home: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run_id = "kaic-published-1"
    store = FileStore(kaic_home / "objects")
    sink = ParquetResults(store, FileStore(kaic_home / "results"))
    sink.stage(run_id, "provision", provision_rows(run_id))
    sink.stage(run_id, "train", train_rows(run_id))
    sink.publish(run_id)
    for key in store.list(f"runs/{run_id}/"):
        store.delete(key)
    assert main(["sync", run_id, "--mlflow-uri", sqlite_uri]) == 0
    assert "rows from file://" in capsys.readouterr().out
    check_layout(sqlite_uri, run_id, parent_status="passed")


def test_sync_bad_input(closed_port: int, kaic_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "kaic-no-such-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kaic: error: RUN 'kaic-no-such-run': unknown run")
    assert main(["sync", "../etc"]) == 2
    assert "RUN '../etc': not a run id" in capsys.readouterr().err
    run_id = "kaic-sync-down"
    ParquetResults(FileStore(kaic_home / "objects"), FileStore(kaic_home / "results")).stage(
        run_id, "provision", provision_rows(run_id))
    assert main(["sync", run_id, "--mlflow-uri", f"http://127.0.0.1:{closed_port}"]) == 2
    assert "kaic: error: --mlflow-uri: MLflow at http://127.0.0.1:" in capsys.readouterr().err


def test_a_step_completes_with_mlflow_down(closed_port: int, kaic_home: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The real step harness, with a one-check step: rows staged, one warning, exit code by the rows."""
    from kaic import stepkit

    def run(config: object, c: stepkit.StepContext) -> list[Outcome]:
        return [Outcome("data.read_throughput", Status.PASSED, metric="data_read_mb_per_s", value=123.0,
                        unit="MB/s")]

    def configure(parser: argparse.ArgumentParser) -> None:
        return None

    module: Any = SimpleNamespace(NAME="data", configure=configure, run=run,
                                  make_config=lambda args, profile: stepkit.StepConfig())
    parser = argparse.ArgumentParser()
    stepkit.add_common_arguments(parser)
    args = parser.parse_args(["--run-id", "kaic-down-step", "--mlflow-uri", f"http://127.0.0.1:{closed_port}"])
    rows, code = stepkit.execute_step(module, args)
    assert code == 0
    assert [(r.check_id, r.value) for r in rows] == [("data.read_throughput", 123.0)]
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if line.startswith("kaic: warning: MLflow")]
    assert len(warnings) == 1
    staged: Sequence[ResultRow] = ParquetResults(FileStore(kaic_home / "objects"),
                                                 FileStore(kaic_home / "results")).staged("kaic-down-step")
    assert [r.value for r in staged] == [123.0]


def test_a_server_that_is_not_mlflow_is_unavailable(capsys: pytest.CaptureFixture[str]) -> None:
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert MlflowTracker(url).log_step(ctx("kaic-404"), "provision", provision_rows("kaic-404")) is False
    finally:
        server.shutdown()
        server.server_close()
    assert "GET /health answered HTTP 404" in capsys.readouterr().err
