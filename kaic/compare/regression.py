"""Regression detection: the latest run of a platform against that platform's recent history.

The rule, per metric with a direction (catalog `MetricSpec.direction`):

    history  = the metric's values in the previous `rule.history` runs (default 10)
    m, mad   = median(history), median(|history - m|)
    allowed  = max(k * 1.4826 * mad, min_relative * |m|)       (k = 3, min_relative = 10%)
    worse    = m - latest   when higher is better
               latest - m   when lower is better
    regression when worse > allowed; fewer than `min_points` history values -> skipped.

1.4826 * MAD estimates the standard deviation of normal noise, so the rule flags a value beyond about
three sigmas of the platform's own spread, and never a change smaller than 10% of the median.

Everything here is pure. `detect` works on a small points table (one value per group, metric and
run rank); `regressions_for_run` is what the report step calls to add `report.regression` rows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kaic import catalog
from kaic.catalog import Direction
from kaic.results import Outcome, ResultRow, Status

CHECK_ID = "report.regression"
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class RegressionRule:
    history: int = 10  # previous runs compared against
    k: float = 3.0  # how many (MAD-estimated) sigmas of noise are tolerated
    min_relative: float = 0.10  # a change smaller than this fraction of the median is never flagged
    min_points: int = 3  # fewer history values -> skipped

    def describe(self) -> str:
        return (f"latest vs median of the previous {self.history} runs; flagged when worse by more than "
                f"max({self.k:g}·1.4826·MAD, {self.min_relative:.0%} of the median); "
                f"needs ≥{self.min_points} earlier values")


@dataclass(frozen=True)
class RegressionResult:
    group: str  # the platform (or whatever `--by` groups on)
    metric: str
    unit: str
    direction: Direction
    run_id: str  # the latest run, the one judged
    latest: float
    points: int  # history values used
    median: float | None = None
    mad: float | None = None
    bound: float | None = None  # the worst value still accepted
    status: Status = Status.SKIPPED  # FAILED = regression, PASSED = none, SKIPPED = not enough history
    message: str = ""

    @property
    def regressed(self) -> bool:
        return self.status is Status.FAILED

    @property
    def change(self) -> float | None:
        """Relative change of the latest value against the history median (signed)."""
        if self.median is None or self.median == 0:
            return None
        return (self.latest - self.median) / abs(self.median)

    def outcome(self) -> Outcome:
        """The `report.regression` row (INFO): failed for a regression, skipped without history."""
        op = ">=" if self.direction is Direction.HIGHER else "<="
        threshold = None if self.bound is None else f"{self.metric} {op} {self.bound:.6g} (regression bound)"
        return Outcome(CHECK_ID, self.status, self.message, metric=self.metric, value=self.latest,
                       unit=self.unit or None, threshold=threshold)


@cache
def direction_of(metric: str) -> Direction:
    spec = catalog.metric_spec(metric)
    return spec.direction if spec is not None else Direction.NONE


def judge(group: str, metric: str, unit: str, run_id: str, latest: float, history: Sequence[float],
          rule: RegressionRule) -> RegressionResult:
    """Apply the rule to one metric of one platform. `history` is newest first."""
    values = np.asarray([v for v in history[: rule.history] if math.isfinite(v)], dtype=np.float64)
    median = float(np.median(values)) if values.size else math.nan
    mad = float(np.median(np.abs(values - median))) if values.size else math.nan
    return verdict(group, metric, unit, run_id, latest, int(values.size), median, mad, rule)


def verdict(group: str, metric: str, unit: str, run_id: str, latest: float, points: int, median: float,
            mad: float, rule: RegressionRule) -> RegressionResult:
    """The rule itself, given the history's size, median and MAD."""
    direction = direction_of(metric)
    base = RegressionResult(group, metric, unit, direction, run_id, latest, points)
    if points < rule.min_points:
        return _with(base, status=Status.SKIPPED,
                     message=f"not enough history: {points} earlier value(s), need {rule.min_points}")
    allowed = max(rule.k * MAD_TO_SIGMA * mad, rule.min_relative * abs(median))
    higher = direction is Direction.HIGHER
    worse = (median - latest) if higher else (latest - median)
    bound = median - allowed if higher else median + allowed
    regressed = worse > allowed
    pct = f" ({(latest - median) / abs(median):+.1%})" if median else ""
    what = "regression" if regressed else "within history"
    message = (f"{what}: {metric} = {latest:.6g}{pct} vs median {median:.6g} of {points} "
               f"earlier runs (MAD {mad:.3g}, {direction.value} is better, bound {bound:.6g})")
    return _with(base, median=median, mad=mad, bound=bound,
                 status=Status.FAILED if regressed else Status.PASSED, message=message)


def _with(r: RegressionResult, **changes: object) -> RegressionResult:
    from dataclasses import replace

    return replace(r, **changes)  # type: ignore[arg-type]


def directed(metrics: Sequence[str]) -> list[str]:
    """The metrics (of those given) that have a better direction."""
    return [m for m in metrics if direction_of(m) is not Direction.NONE]


def detect(points: pa.Table, rule: RegressionRule = RegressionRule()) -> list[RegressionResult]:
    """Judge every (group, metric) whose latest run (rank 0) has a value.

    `points`: columns group, metric, rank (0 = latest run, 1 = the one before...), run_id, value, unit;
    one row per group, metric and rank (average repeated values first). Medians and MADs are computed
    for all series at once (a series x history matrix); Python loops over series, never over rows.
    """
    if points.num_rows == 0:
        return []
    points = points.sort_by([("group", "ascending"), ("metric", "ascending"), ("rank", "ascending")])
    keys = pc.binary_join_element_wise(points["group"], points["metric"], "\x1f")
    keys = keys.to_numpy(zero_copy_only=False)
    n = len(keys)
    starts = np.concatenate(([0], np.flatnonzero(keys[1:] != keys[:-1]) + 1))
    series = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    ranks = points["rank"].to_numpy()
    values = points["value"].to_numpy(zero_copy_only=False).astype(np.float64)
    pos = np.arange(n) - starts[series] - 1  # place in the series' history, newest first
    take = (pos >= 0) & (pos < rule.history) & (ranks <= rule.history) & np.isfinite(values)
    matrix = np.full((len(starts), max(rule.history, 1)), np.nan)
    matrix[series[take], pos[take]] = values[take]
    count = np.sum(~np.isnan(matrix), axis=1)
    with warnings.catch_warnings():  # all-NaN rows (no history) give NaN, and are skipped below
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(matrix, axis=1)
        mad = np.nanmedian(np.abs(matrix - median[:, None]), axis=1)
    judged = np.flatnonzero(ranks[starts] == 0)  # the latest run measured it
    groups = points["group"].take(pa.array(starts[judged])).to_pylist()
    metrics = points["metric"].take(pa.array(starts[judged])).to_pylist()
    units = points["unit"].take(pa.array(starts[judged])).to_pylist()
    run_ids = points["run_id"].take(pa.array(starts[judged])).to_pylist()
    return [
        verdict(g, m, u or "", r, float(values[starts[i]]), int(count[i]), float(median[i]), float(mad[i]), rule)
        for i, g, m, u, r in zip(judged.tolist(), groups, metrics, units, run_ids, strict=True)
    ]


def regressions_for_run(rows: Sequence[ResultRow], history: pa.Table | None,
                        rule: RegressionRule = RegressionRule()) -> list[Outcome]:
    """`report.regression` outcomes for one run, for the report step.

    `rows`: the run's own rows (staged, not yet published). `history`: the results dataset as read by
    `kaic.compare.dataset.load_results` (or None when there is none yet); only earlier runs of the same
    platform count. One outcome per metric with a direction that the run measured.
    """
    measured = [r for r in rows if r.metric and r.value is not None and math.isfinite(r.value)
                and r.check_id != CHECK_ID and direction_of(r.metric) is not Direction.NONE]
    if not measured:
        return []
    run = measured[0]
    latest: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for r in measured:
        assert r.metric is not None
        assert r.value is not None
        latest.setdefault(r.metric, []).append(r.value)
        units[r.metric] = r.unit or ""
    past = _history_values(history, run.platform, run.run_id, run.started_at, list(latest), rule.history)
    return [
        judge(run.platform, m, units[m], run.run_id, float(np.mean(vs)), past.get(m, []), rule).outcome()
        for m, vs in sorted(latest.items())
    ]


def _history_values(history: pa.Table | None, platform: str, run_id: str, before: object, metrics: list[str],
                    n: int) -> dict[str, list[float]]:
    """metric -> values of the platform's previous `n` runs (newest first), one per run."""
    if history is None or history.num_rows == 0:
        return {}
    t = history.filter(
        (pc.field("platform") == platform) & (pc.field("run_id") != run_id)
        & (pc.field("started_at") < pa.scalar(before, type=history.schema.field("started_at").type))
        & pc.field("metric").isin(metrics) & pc.field("value").is_valid()
        & (pc.field("check_id") != CHECK_ID)
    )
    if t.num_rows == 0:
        return {}
    runs = t.group_by("run_id").aggregate([("started_at", "max")]).sort_by([("started_at_max", "descending")])
    keep = runs["run_id"].slice(0, n)
    per_run = (t.filter(pc.field("run_id").isin(keep))
               .group_by(["metric", "run_id"]).aggregate([("value", "mean"), ("started_at", "max")])
               .sort_by([("metric", "ascending"), ("started_at_max", "descending")]))
    out: dict[str, list[float]] = {}
    for m, v in zip(per_run["metric"].to_pylist(), per_run["value_mean"].to_pylist(), strict=True):
        out.setdefault(m, []).append(v)
    return out
