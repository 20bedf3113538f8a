"""Publishing runs for real: to S3 (moto server) and read back with pyarrow's S3 filesystem, and a writer
process killed with SIGKILL mid-publish never leaves a partial run visible."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from kaic.results import Level, ResultRow, Status
from kaic.stores.objects import TMP_PREFIX, open_store
from kaic.stores.results_dataset import ParquetResults, read_results, rows_for_run

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def rows(run_id: str, platform: str, n: int) -> list[ResultRow]:
    return [
        ResultRow(run_id=run_id, suite_version="0.1.0", started_at=T0, platform=platform, cluster="c",
                  k8s_version="1.35", accelerator="cpu", step="train", check_id="train.allreduce",
                  requirement_id=None, level=Level.INFO, status=Status.PASSED,
                  metric=f"allreduce_busbw_gbps@{2 ** (i % 10)}MiB", value=float(i), unit="GB/s",
                  recorded_at=T0 + timedelta(microseconds=i))
        for i in range(n)
    ]


def test_publish_to_s3_and_read_back_with_pyarrow(s3_env: Any) -> None:
    objects, results = open_store("s3://kaic/objects", "--object-store"), open_store("s3://kaic/results", "-")
    sink = ParquetResults(objects, results)
    for run_id, platform in (("r-eks", "eks"), ("r-gke", "gke")):
        sink.stage(run_id, "train", rows(run_id, platform, 5))
        assert sink.publish(run_id) == f"s3://kaic/results/platform={platform}/date=2025-06-30/{run_id}.parquet"
    sink.publish("r-eks")  # idempotent
    table = read_results("s3://kaic/results", columns=["run_id", "platform", "value"])
    assert sorted(table.column("run_id").to_pylist()) == ["r-eks"] * 5 + ["r-gke"] * 5
    assert read_results("s3://kaic/results", platforms=["gke"]).num_rows == 5
    assert rows_for_run("s3://kaic/results", "r-gke") == sink.staged("r-gke")
    assert read_results("s3://kaic/nothing-yet").num_rows == 0


def _publisher(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    script = textwrap.dedent(f"""
        import sys
        from datetime import UTC, datetime, timedelta
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_stores_results_publish import rows
        from kaic.stores.objects import FileStore
        from kaic.stores.results_dataset import ParquetResults
        sink = ParquetResults(FileStore(Path({str(tmp_path / 'objects')!r})),
                              FileStore(Path({str(tmp_path / 'results')!r})))
        sink.stage("big", "train", rows("big", "eks", 100_000))
    """) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)


def _kill(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_writer_killed_between_write_and_rename_leaves_nothing_visible(tmp_path: Path) -> None:
    proc = _publisher(tmp_path, """
        import time
        def stall(self, target):  # the whole file is written; the process dies before the rename
            print("WRITTEN", flush=True)
            time.sleep(60)
        Path.replace = stall
        sink.publish("big")
    """)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "WRITTEN"
    finally:
        _kill(proc)
    results = tmp_path / "results"
    leftovers = [p for p in results.rglob("*") if p.is_file()]
    assert leftovers, "the child should have died holding a temp file"
    assert all(p.name.startswith(TMP_PREFIX) for p in leftovers)
    assert read_results(str(results)).num_rows == 0
    assert ds.dataset(str(results), partitioning="hive").to_table().num_rows == 0  # plain pyarrow too
    assert rows_for_run(str(results), "big") == []


def test_writer_killed_at_a_random_moment_never_shows_a_partial_run(tmp_path: Path) -> None:
    proc = _publisher(tmp_path, """
        print("STAGED", flush=True)
        while True:
            sink.publish("big")  # republishing: the file is rewritten over and over
    """)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "STAGED"
        time.sleep(0.7)
    finally:
        _kill(proc)
    results = tmp_path / "results"
    table = read_results(str(results), columns=["run_id"])
    assert table.num_rows in (0, 100_000)  # all or nothing, and any visible file is whole and readable
    assert ds.dataset(str(results), partitioning="hive").count_rows() == table.num_rows
