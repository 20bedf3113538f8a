"""The Parquet results: shards per step, one atomic file per run in a hive-partitioned dataset."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from kaic.errors import ConfigError
from kaic.results import Level, ResultRow, Status
from kaic.stores import ResultSink
from kaic.stores.objects import FileStore
from kaic.stores.results_dataset import (
    RESULTS_SCHEMA,
    ParquetResults,
    read_results,
    rows_for_run,
    rows_to_table,
)

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 23, 59, 58, 123456, tzinfo=UTC)


def row(run_id: str, step: str, check: str, *, platform: str = "eks", value: float | None = None,
        metric: str | None = None, offset: int = 0, status: Status = Status.PASSED,
        requirement_id: str | None = None, message: str = "", evidence: str | None = None) -> ResultRow:
    return ResultRow(
        run_id=run_id, suite_version="0.1.0", started_at=T0, platform=platform, cluster="c1",
        k8s_version="1.35", accelerator="cpu", step=step, check_id=check, requirement_id=requirement_id,
        level=Level.MUST, status=status, metric=metric, value=value, unit="s" if metric else None,
        message=message, evidence=evidence, recorded_at=T0 + timedelta(seconds=offset),
    )


@pytest.fixture
def sink(tmp_path: Path) -> ParquetResults:
    return ParquetResults(FileStore(tmp_path / "objects"), FileStore(tmp_path / "results"))


def test_is_a_result_sink(sink: ParquetResults) -> None:
    assert isinstance(sink, ResultSink)


def test_round_trip_keeps_nulls_timestamps_and_floats(sink: ParquetResults) -> None:
    rows = [
        row("r1", "provision", "provision.fingerprint", requirement_id="accelerator_metrics",
            evidence='{"a": 1}'),
        row("r1", "provision", "provision.speed", metric="t@1", value=0.1 + 0.2, offset=1, message="fast"),
        row("r1", "provision", "provision.nan", metric="x", value=None, offset=2, status=Status.SKIPPED),
    ]
    uri = sink.stage("r1", "provision", rows)
    assert uri.endswith("/runs/r1/rows/provision.parquet")
    back = sink.staged("r1")
    assert back == rows  # every field, nulls, microsecond UTC timestamps and float64 bits included
    assert back[1].value == 0.1 + 0.2
    assert back[0].started_at.utcoffset() == timedelta(0)


def test_non_utc_timestamps_are_stored_as_utc(sink: ParquetResults) -> None:
    paris = timezone(timedelta(hours=1))
    r = row("r1", "data", "data.x")
    r2 = ResultRow(**{**r.__dict__, "started_at": T0.astimezone(paris)})
    sink.stage("r1", "data", [r2])
    assert sink.staged("r1")[0].started_at == T0


def test_naive_timestamps_and_missing_required_values_are_refused() -> None:
    r = row("r1", "data", "data.x")
    with pytest.raises(ValueError, match="timezone-aware"):
        rows_to_table([ResultRow(**{**r.__dict__, "started_at": datetime(2025, 1, 1)})])
    with pytest.raises(ValueError, match="platform is null"):
        rows_to_table([ResultRow(**{**r.__dict__, "platform": None})])


def test_restaging_a_step_replaces_its_rows(sink: ParquetResults) -> None:
    sink.stage("r1", "train", [row("r1", "train", "train.a", offset=5),
                               row("r1", "train", "train.b", offset=6)])
    sink.stage("r1", "provision", [row("r1", "provision", "provision.a")])
    sink.stage("r1", "train", [row("r1", "train", "train.c", offset=7)])
    assert [r.check_id for r in sink.staged("r1")] == ["provision.a", "train.c"]  # in the order steps ran
    assert sink.staged("other") == []


def test_publish_writes_one_hive_partitioned_file_readable_by_plain_pyarrow(sink: ParquetResults,
                                                                             tmp_path: Path) -> None:
    sink.stage("r1", "provision", [row("r1", "provision", "provision.a", value=1.5, metric="m")])
    sink.stage("r1", "train", [row("r1", "train", "train.a", offset=3)])
    uri = sink.publish("r1")
    root = tmp_path / "results"
    assert uri == f"file://{root.resolve()}/platform=eks/date=2025-03-01/r1.parquet"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == ["platform=eks/date=2025-03-01/r1.parquet"]
    table = ds.dataset(str(root), partitioning="hive").to_table()
    assert table.num_rows == 2
    assert set(table.column("platform").to_pylist()) == {"eks"}
    assert table.column("date").to_pylist() == ["2025-03-01"] * 2
    assert pq.read_schema(root / files[0]).remove_metadata() == RESULTS_SCHEMA
    sink.publish("r1")  # idempotent
    assert ds.dataset(str(root), partitioning="hive").to_table().num_rows == 2


def test_publish_with_nothing_staged_is_a_config_error(sink: ParquetResults) -> None:
    with pytest.raises(ConfigError, match="run 'nope': no staged rows"):
        sink.publish("nope")


def test_odd_platform_names_are_encoded_in_partition_folders(sink: ParquetResults, tmp_path: Path) -> None:
    sink.stage("r1", "p", [row("r1", "p", "p.a", platform="on-prem/dc 1")])
    sink.publish("r1")
    assert (tmp_path / "results" / "platform=on-prem%2Fdc%201").is_dir()
    table = read_results(f"file://{tmp_path / 'results'}")
    assert table.column("platform").to_pylist() == ["on-prem/dc 1"]


def publish_runs(sink: ParquetResults) -> None:
    for i, platform in enumerate(["eks", "gke", "eks"]):
        run_id = f"run-{i}"
        rows = [row(run_id, "train", "train.speed", platform=platform, metric="samples_per_s",
                    value=100.0 + i, offset=j) for j in range(3)]
        sink.stage(run_id, "train", rows)
        sink.publish(run_id)


def test_read_results_projection_and_filters(sink: ParquetResults, tmp_path: Path) -> None:
    publish_runs(sink)
    uri = f"file://{tmp_path / 'results'}"
    everything = read_results(uri)
    assert everything.num_rows == 9
    assert everything.schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert everything.schema.field("date").type == pa.date32()
    eks = read_results(uri, columns=["run_id", "value"], platforms=["eks"])
    assert eks.column_names == ["run_id", "value"]
    assert sorted(set(eks.column("run_id").to_pylist())) == ["run-0", "run-2"]
    one = read_results(uri, run_ids=["run-1"], filter=ds.field("value") > 50)
    assert one.column("platform").to_pylist() == ["gke"] * 3
    assert read_results(uri, since=date(2025, 3, 2)).num_rows == 0
    assert read_results(str(tmp_path / "results"), since=date(2025, 3, 1)).num_rows == 9


def test_rows_for_run(sink: ParquetResults, tmp_path: Path) -> None:
    publish_runs(sink)
    rows = rows_for_run(f"file://{tmp_path / 'results'}", "run-1")
    assert [(r.run_id, r.platform, r.value) for r in rows] == [("run-1", "gke", 101.0)] * 3
    assert rows == sink.staged("run-1")
    assert rows_for_run(f"file://{tmp_path / 'results'}", "run-404") == []


def test_read_results_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--results: results dataset .* does not exist"):
        read_results(f"file://{tmp_path / 'absent'}")
    (tmp_path / "empty").mkdir()
    assert read_results(str(tmp_path / "empty")).num_rows == 0
    with pytest.raises(ConfigError, match="not in the results schema"):
        read_results(str(tmp_path / "empty"), columns=["nope"])


def test_a_failed_publish_leaves_no_partial_run(sink: ParquetResults, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    sink.stage("r1", "train", [row("r1", "train", "train.a")])

    def crash(self: Path, target: Path) -> None:  # dies between the temp write and the rename
        raise OSError("killed")

    monkeypatch.setattr(Path, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        sink.publish("r1")
    monkeypatch.undo()
    assert read_results(str(tmp_path / "results")).num_rows == 0
    assert [p for p in (tmp_path / "results").rglob("*") if p.is_file()] == []
