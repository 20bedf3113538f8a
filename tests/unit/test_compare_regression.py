"""Regression rule (median + MAD) over a platform's recent history: pure functions, hand-made histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from kaic.catalog import Direction
from kaic.compare import regression_outcomes
from kaic.compare.dataset import normalize
from kaic.compare.regression import CHECK_ID, RegressionRule, detect, judge, regressions_for_run
from kaic.results import Level, ResultRow, Status
from tests.compare_rows import rows_table, write_dataset

pytestmark = pytest.mark.unit

HISTORY = [100.0, 102.0, 98.0, 101.0, 99.0, 100.5, 99.5, 101.5, 98.5, 100.0]  # newest first


def test_seeded_regression_30_percent_worse_is_flagged() -> None:
    r = judge("eks", "train_samples_per_s", "samples/s", "run-11", 70.0, HISTORY, RegressionRule())
    assert r.status is Status.FAILED
    assert r.regressed
    assert r.median == pytest.approx(100.0)
    assert r.bound == pytest.approx(90.0)  # 10% floor beats 3*1.4826*MAD (MAD = 1.0 -> 4.45)
    assert r.change == pytest.approx(-0.30)
    assert "regression" in r.message


def test_noise_within_the_history_spread_is_not_flagged() -> None:
    noisy = [100.0, 130.0, 75.0, 110.0, 90.0, 125.0, 80.0, 105.0, 95.0, 120.0]  # MAD 15 -> allowed 66.7
    r = judge("gke", "train_samples_per_s", "samples/s", "run-11", 80.0, noisy, RegressionRule())
    assert r.status is Status.PASSED
    # the same 20% drop against a tight history is a regression
    assert judge("gke", "train_samples_per_s", "", "r", 80.0, HISTORY, RegressionRule()).regressed


def test_direction_matters() -> None:
    latency = [10.0, 10.2, 9.8, 10.1, 9.9]
    up = judge("aks", "serve_p95_ms@c8", "ms", "r", 13.0, latency, RegressionRule())
    down = judge("aks", "serve_p95_ms@c8", "ms", "r", 7.0, latency, RegressionRule())
    assert up.direction is Direction.LOWER
    assert up.regressed  # lower is better: latency up 30% is a regression
    assert not down.regressed  # and faster is an improvement
    assert down.status is Status.PASSED
    assert not judge("aks", "train_samples_per_s", "", "r", 13.0, latency, RegressionRule()).regressed


def test_not_enough_history_is_skipped_with_the_reason() -> None:
    r = judge("eks", "train_mfu", "ratio", "r", 0.01, [0.21, 0.2], RegressionRule())
    assert r.status is Status.SKIPPED
    assert "not enough history" in r.message
    assert r.outcome().status is Status.SKIPPED


def test_only_the_last_n_history_points_count() -> None:
    # ten good recent values, then old slow ones: with history=3 only the first three count
    history = [100.0, 101.0, 99.0] + [50.0] * 10
    assert judge("eks", "train_samples_per_s", "", "r", 60.0, history, RegressionRule(history=3)).regressed
    wide = judge("eks", "train_samples_per_s", "", "r", 60.0, history, RegressionRule(history=13))
    assert wide.median == 50.0


def test_outcome_is_an_info_report_regression_row_naming_the_metric() -> None:
    o = judge("eks", "checkpoint_write_mb_per_s", "MB/s", "r", 600.0, [920.0, 930.0, 910.0],
              RegressionRule()).outcome()
    assert o.check_id == CHECK_ID
    assert o.status is Status.FAILED
    assert o.metric == "checkpoint_write_mb_per_s"
    assert o.value == 600.0
    assert o.threshold is not None
    assert o.threshold.startswith("checkpoint_write_mb_per_s >= ")


def test_detect_over_a_points_table_judges_each_group_and_metric() -> None:
    groups, metrics, ranks, values = [], [], [], []
    for g, latest in (("eks", 70.0), ("gke", 99.0)):
        for rank, v in enumerate([latest, *HISTORY]):
            groups.append(g)
            metrics.append("train_samples_per_s")
            ranks.append(rank)
            values.append(v)
    # a metric the latest run did not measure is not judged
    groups.append("gke")
    metrics.append("train_mfu")
    ranks.append(1)
    values.append(0.2)
    points = pa.table({"group": groups, "metric": metrics, "rank": pa.array(ranks, pa.int32()),
                       "run_id": [f"{g}-{r}" for g, r in zip(groups, ranks, strict=True)], "value": values,
                       "unit": ["samples/s"] * len(groups)})
    results = {(r.group, r.metric): r for r in detect(points)}
    assert set(results) == {("eks", "train_samples_per_s"), ("gke", "train_samples_per_s")}
    assert results["eks", "train_samples_per_s"].regressed
    assert results["eks", "train_samples_per_s"].run_id == "eks-0"
    assert not results["gke", "train_samples_per_s"].regressed


def _row(run: int, metric: str, value: float, platform: str = "eks") -> ResultRow:
    started = datetime(2026, 3, 1, 2, tzinfo=UTC) + timedelta(days=run)
    return ResultRow(run_id=f"{platform}-{run}", suite_version="0.1.0", started_at=started, platform=platform,
                     cluster="c", k8s_version="1.35", accelerator="H100", step="train",
                     check_id="train.throughput", requirement_id=None, level=Level.INFO,
                     status=Status.PASSED, metric=metric, value=value, unit="samples/s")


def test_regressions_for_run_uses_only_earlier_runs_of_the_same_platform() -> None:
    past = [_row(i, "train_samples_per_s", v) for i, v in enumerate(reversed(HISTORY))]
    other = [_row(i, "train_samples_per_s", 10.0, platform="gke") for i in range(10)]
    future = [_row(40, "train_samples_per_s", 1.0)]  # after the judged run: ignored
    history = normalize(rows_table(past + other + future))
    run = [_row(20, "train_samples_per_s", 70.0), _row(20, "train_mfu", 0.2)]
    outcomes = regressions_for_run(run, history)
    by_metric = {o.metric: o for o in outcomes}
    assert by_metric["train_samples_per_s"].status is Status.FAILED
    assert by_metric["train_mfu"].status is Status.SKIPPED  # no history for it
    assert "median 100" in by_metric["train_samples_per_s"].message
    assert all(o.check_id == CHECK_ID for o in outcomes)


def test_regressions_for_run_without_a_dataset_skips() -> None:
    outcomes = regressions_for_run([_row(0, "train_samples_per_s", 70.0)], None)
    assert [o.status for o in outcomes] == [Status.SKIPPED]
    assert regressions_for_run([], None) == []


def test_regression_outcomes_reads_the_platforms_history_from_the_dataset(tmp_path: Path) -> None:
    run = [_row(20, "train_samples_per_s", 70.0)]
    assert [o.status for o in regression_outcomes(run, f"file://{tmp_path / 'none'}")] == [Status.SKIPPED]
    past = [_row(i, "train_samples_per_s", v) for i, v in enumerate(reversed(HISTORY))]
    other = [_row(i, "train_samples_per_s", 1.0, "gke") for i in range(5)]
    root = write_dataset(tmp_path / "results", past + other)
    (outcome,) = regression_outcomes(run, f"file://{root}")
    assert outcome.status is Status.FAILED
    assert "of 10 earlier runs" in outcome.message
