"""The comparison core: a normalized results Table in, a `Comparison` out. Pure, and pyarrow throughout.

Semantics (docs/compare.md):
- runs are grouped by `by` (platform by default); a group's *latest* run is the one with the latest
  `started_at` (ties broken by run id) inside the window (`since`, `last` runs per group);
- the requirement matrix takes each group's latest run; a requirement's cell is the worst status of
  its checks there (failed > error > passed > skipped) with the strongest level (MUST > SHOULD > INFO);
- a metric's value is the mean of its rows in the latest run; its ratio is value / baseline value,
  marked better/worse by the catalog direction, `same` within `tolerance`;
- regressions: `kaic.compare.regression` over each group's latest run and the runs before it.

Python loops run over runs, groups and metrics (hundreds to thousands), never over rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kaic.catalog import BY_ID, REQUIREMENTS, Direction
from kaic.compare.regression import CHECK_ID as REGRESSION_CHECK
from kaic.compare.regression import RegressionResult, RegressionRule, detect, direction_of
from kaic.errors import ConfigError

GROUP_COLUMNS = ("platform", "cluster", "accelerator", "k8s_version")
STATUS_ORDER = ("skipped", "passed", "error", "failed")  # worst last
LEVEL_ORDER = ("INFO", "SHOULD", "MUST")  # strongest last
DRIVER_CHECKS = ("provision.accelerators", "provision.driver_versions")


@dataclass(frozen=True)
class RunInfo:
    """A group's latest run, with what the report shows beside it."""

    group: str
    run_id: str
    started_at: datetime
    platform: str
    cluster: str
    k8s_version: str
    accelerator: str
    suite_version: str
    driver: str
    runs_in_window: int
    counts: dict[str, int]  # status -> rows in the latest run


@dataclass(frozen=True)
class Cell:
    status: str  # worst status of the requirement's checks in the latest run
    level: str
    checks: int
    message: str = ""  # the worst check's message


@dataclass(frozen=True)
class MetricRow:
    metric: str
    unit: str
    direction: Direction
    values: dict[str, float | None]  # group -> value in its latest run
    ratios: dict[str, float | None]  # group -> value / baseline value
    marks: dict[str, str]  # group -> baseline | better | worse | same | n/a | ''


@dataclass(frozen=True)
class Comparison:
    by: str
    groups: tuple[str, ...]
    baseline: str
    baseline_reason: str
    window: str
    runs: dict[str, RunInfo]
    requirements: tuple[str, ...]
    matrix: dict[str, dict[str, Cell]]  # requirement -> group -> cell (absent: not evaluated)
    metrics: tuple[MetricRow, ...]
    regressions: tuple[RegressionResult, ...]
    rule: RegressionRule = field(default_factory=RegressionRule)
    # group, run_id, started_at, metric, value: the window's directed metric rows (for trend charts)
    history: pa.Table | None = None

    @property
    def regressed(self) -> list[RegressionResult]:
        return [r for r in self.regressions if r.regressed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by, "groups": list(self.groups), "baseline": self.baseline,
            "baseline_reason": self.baseline_reason, "window": self.window,
            "runs": {g: {**r.__dict__, "started_at": r.started_at.isoformat()} for g, r in self.runs.items()},
            "requirements": {
                req: {g: c.__dict__ for g, c in cells.items()} for req, cells in self.matrix.items()
            },
            "metrics": [
                {"metric": m.metric, "unit": m.unit, "direction": m.direction.value, "values": m.values,
                 "ratios": m.ratios, "marks": m.marks} for m in self.metrics
            ],
            "regression_rule": self.rule.describe(),
            "regressions": [
                {"group": r.group, "metric": r.metric, "unit": r.unit, "direction": r.direction.value,
                 "run_id": r.run_id, "latest": r.latest, "median": r.median, "mad": r.mad, "bound": r.bound,
                 "points": r.points, "status": r.status.value, "message": r.message}
                for r in self.regressions
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


DEFAULT_RULE = RegressionRule()


@dataclass(frozen=True)
class _Runs:
    """Every run in the table: its group, start and rank, plus the run index of each row."""

    ids: list[str]
    groups: list[str]
    started: list[datetime]
    first_row: np.ndarray  # a row of each run (its metadata columns are taken from there)
    rank: np.ndarray  # per run: 0 = its group's latest, 1 = the one before...
    row_run: np.ndarray  # per row: index into the lists above

    def row_rank(self) -> np.ndarray:
        return np.asarray(self.rank[self.row_run])


def _index_runs(table: pa.Table) -> _Runs:
    """Two hash passes over run_id and O(rows) numpy; Python only loops over runs."""
    ids = pc.unique(table["run_id"])
    row_run = pc.index_in(table["run_id"], value_set=ids).to_numpy(zero_copy_only=False).astype(np.int64)
    first = np.empty(len(ids), dtype=np.int64)
    first[row_run[::-1]] = np.arange(len(row_run) - 1, -1, -1)  # first occurrence of each run
    take = pa.array(first)
    groups = table["group"].take(take).to_pylist()
    started = table["started_at"].take(take).to_pylist()
    run_ids = ids.to_pylist()
    order = sorted(range(len(run_ids)), key=lambda i: (groups[i], started[i], run_ids[i]), reverse=True)
    rank = np.zeros(len(run_ids), dtype=np.int64)
    previous, n = None, 0
    for i in order:
        n = n + 1 if groups[i] == previous else 0
        previous = groups[i]
        rank[i] = n
    return _Runs(run_ids, groups, started, first, rank, row_run)


def latest_run_ids(table: pa.Table, by: str = "platform") -> list[str]:
    """The latest run of each group (what the matrix, metric values and run metadata come from)."""
    runs = _index_runs(table.append_column("group", pc.fill_null(table[by], "(none)")))
    return [runs.ids[i] for i in np.flatnonzero(runs.rank == 0)]


def compare(table: pa.Table, *, by: str = "platform", baseline: str | None = None,
            since: datetime | None = None, last: int | None = None, rule: RegressionRule = DEFAULT_RULE,
            tolerance: float = 0.01, keep_history: bool = True) -> Comparison:
    """Compare groups of runs. `table` is normalized (kaic.compare.dataset.normalize)."""
    if by not in GROUP_COLUMNS:
        raise ConfigError(f"--by {by!r}: not one of {', '.join(GROUP_COLUMNS)}")
    if last is not None and last < 1:
        raise ConfigError(f"--last {last}: must be at least 1")
    table = table.append_column("group", pc.fill_null(table[by], "(none)"))
    if since is not None:
        start = pa.scalar(since, type=table.schema.field("started_at").type)
        table = table.filter(pc.greater_equal(table["started_at"], start))
    if table.num_rows == 0:
        raise ConfigError(f"--since {since:%Y-%m-%d}: no runs on or after that date" if since
                          else "the results have no rows")

    runs = _index_runs(table)
    window = len(runs.ids) if last is None else last  # runs per group kept
    in_window = runs.rank < window
    row_rank = runs.row_rank()
    table = table.append_column("rank", pa.array(row_rank))
    latest = table.filter(pa.array(row_rank == 0))
    numeric = table.select(["group", "run_id", "started_at", "check_id", "metric", "value", "unit", "rank"])
    recent = _measured(numeric.filter(pa.array(row_rank <= min(rule.history, window - 1))))
    directed_metrics = pa.array(_directed(recent), pa.string())
    points = (recent.filter(pc.is_in(recent["metric"], value_set=directed_metrics))
              .group_by(["group", "run_id", "metric"])
              .aggregate([("value", "mean"), ("unit", "max"), ("rank", "min")])
              .rename_columns(["group", "run_id", "metric", "value", "unit", "rank"]))

    per_group: dict[str, int] = {}
    for g, ok in zip(runs.groups, in_window.tolist(), strict=True):
        per_group[g] = per_group.get(g, 0) + int(ok)
    groups = tuple(sorted(per_group))
    baseline, reason = _baseline(groups, baseline)
    history = None
    if keep_history:  # the window's directed metric rows, for the HTML trend charts
        window_rows = _measured(numeric if last is None else numeric.filter(pa.array(row_rank < window)))
        history = (window_rows.filter(pc.is_in(window_rows["metric"], value_set=directed_metrics))
                   .select(["group", "run_id", "started_at", "metric", "value"]))
    latest_first = [int(runs.first_row[i]) for i in np.flatnonzero(runs.rank == 0)]
    return Comparison(
        by=by, groups=groups, baseline=baseline, baseline_reason=reason,
        window=_describe_window(since, last, per_group),
        runs=_run_info(table.take(pa.array(latest_first, pa.int64())), latest, per_group),
        requirements=_requirement_order(latest), matrix=_matrix(latest),
        metrics=_metrics(latest, groups, baseline, tolerance),
        regressions=tuple(detect(points, rule)), rule=rule, history=history,
    )


def _baseline(groups: Sequence[str], wanted: str | None) -> tuple[str, str]:
    if wanted is not None:
        if wanted not in groups:
            raise ConfigError(f"--baseline {wanted!r}: not in the results (have: {', '.join(groups)})")
        return wanted, "chosen with --baseline"
    if "local" in groups:
        return "local", "default: 'local' is present"
    return groups[0], "default: first alphabetically (no 'local' runs)"


def _describe_window(since: datetime | None, last: int | None, per_group: dict[str, int]) -> str:
    parts = []
    if since is not None:
        parts.append(f"runs since {since:%Y-%m-%d}")
    if last is not None:
        parts.append(f"last {last} run(s) per group")
    total = sum(per_group.values())
    return (", ".join(parts) or "all runs") + f" · {total} run(s) in {len(per_group)} group(s)"


def _measured(table: pa.Table) -> pa.Table:
    """Rows with a finite numeric value and a metric name; regression rows excluded (they repeat it)."""
    not_regression = pc.invert(pc.fill_null(pc.equal(table["check_id"], REGRESSION_CHECK), False))
    ok = pc.and_(pc.and_(pc.is_finite(table["value"]), pc.is_valid(table["metric"])), not_regression)
    return table.filter(pc.fill_null(ok, False))


def _directed(measured: pa.Table) -> list[str]:
    return [m for m in pc.unique(measured["metric"]).to_pylist() if direction_of(m) is not Direction.NONE]


def _run_info(firsts: pa.Table, latest: pa.Table, per_group: dict[str, int]) -> dict[str, RunInfo]:
    """`firsts`: one row of each group's latest run (run metadata); `latest`: all of its rows."""
    counts = latest.group_by(["group", "status"]).aggregate([("status", "count")])
    by_group: dict[str, dict[str, int]] = {}
    for g, s, n in zip(counts["group"].to_pylist(), counts["status"].to_pylist(),
                       counts["status_count"].to_pylist(), strict=True):
        by_group.setdefault(g, {})[s] = n
    drivers = _drivers(latest)
    out = {}
    for row in firsts.select(["group", "run_id", "started_at", "platform", "cluster", "k8s_version",
                              "accelerator", "suite_version"]).to_pylist():
        g = row["group"]
        out[g] = RunInfo(
            group=g, run_id=row["run_id"], started_at=row["started_at"], platform=row["platform"] or "",
            cluster=row["cluster"] or "", k8s_version=row["k8s_version"] or "",
            accelerator=row["accelerator"] or "", suite_version=row["suite_version"] or "",
            driver=drivers.get(g, ""), runs_in_window=per_group.get(g, 0), counts=by_group.get(g, {}),
        )
    return dict(sorted(out.items()))


DRIVER_KEYS = ("driver", "driver_version", "driverversion")
_DRIVER_RE = re.compile(r"driver[ _-]?(?:version)?\W{0,3}(\d+(?:\.\d+)+)", re.IGNORECASE)


def _drivers(latest: pa.Table) -> dict[str, str]:
    """The accelerator driver version, where provision recorded one (evidence JSON or message)."""
    rows = (latest.filter(pc.is_in(latest["check_id"], value_set=pa.array(DRIVER_CHECKS)))
            .select(["group", "evidence", "message"]))
    out: dict[str, str] = {}
    for row in rows.to_pylist():
        found = _driver_from(row["evidence"]) or _driver_from_text(row["message"])
        if found:
            out.setdefault(row["group"], found)
    return out


def _driver_from(evidence: str | None) -> str:
    if not evidence:
        return ""
    try:
        data = json.loads(evidence)
    except ValueError:
        return _driver_from_text(evidence)
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k.lower() in DRIVER_KEYS and isinstance(v, str | int | float):
                    return str(v)
                stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return ""


def _driver_from_text(text: str | None) -> str:
    m = _DRIVER_RE.search(text or "")
    return m.group(1) if m else ""


def _requirement_order(latest: pa.Table) -> tuple[str, ...]:
    present = set(pc.unique(latest["requirement_id"].drop_null()).to_pylist())
    known = [r.id for r in REQUIREMENTS if r.id in present]
    return tuple(known + sorted(present - set(BY_ID)))


def _matrix(latest: pa.Table) -> dict[str, dict[str, Cell]]:
    rows = latest.filter(pc.is_valid(latest["requirement_id"]))
    out: dict[str, dict[str, Cell]] = {}
    if rows.num_rows == 0:
        return out
    severity = pc.fill_null(pc.index_in(rows["status"], value_set=pa.array(STATUS_ORDER)), STATUS_ORDER.index("error"))
    strength = pc.fill_null(pc.index_in(rows["level"], value_set=pa.array(LEVEL_ORDER)), 0)
    # a few rows per requirement and platform: fold them in Python
    for req, g, sev, lvl, msg in zip(rows["requirement_id"].to_pylist(), rows["group"].to_pylist(),
                                     severity.to_pylist(), strength.to_pylist(), rows["message"].to_pylist(),
                                     strict=True):
        cells = out.setdefault(req, {})
        cell = cells.get(g)
        if cell is None:
            cells[g] = Cell(STATUS_ORDER[sev], LEVEL_ORDER[lvl], 1, msg or "")
            continue
        worse = sev > STATUS_ORDER.index(cell.status)
        cells[g] = Cell(STATUS_ORDER[sev] if worse else cell.status,
                        LEVEL_ORDER[max(lvl, LEVEL_ORDER.index(cell.level))], cell.checks + 1,
                        (msg or "") if worse else cell.message)
    return out


def _natural(text: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _metrics(latest: pa.Table, groups: Sequence[str], baseline: str,
             tolerance: float) -> tuple[MetricRow, ...]:
    measured = _measured(latest)
    agg = measured.group_by(["metric", "group"]).aggregate([("value", "mean"), ("unit", "max")])
    values: dict[str, dict[str, float]] = {}
    units: dict[str, str] = {}
    for m, g, v, u in zip(agg["metric"].to_pylist(), agg["group"].to_pylist(), agg["value_mean"].to_pylist(),
                          agg["unit_max"].to_pylist(), strict=True):
        values.setdefault(m, {})[g] = v
        units[m] = units.get(m) or u or ""
    out = []
    for metric in sorted(values, key=_natural):
        direction = direction_of(metric)
        per = values[metric]
        base = per.get(baseline)
        ratios: dict[str, float | None] = {}
        marks: dict[str, str] = {}
        for g in groups:
            v = per.get(g)
            ratio = v / base if v is not None and base not in (None, 0) else None
            ratios[g] = ratio
            marks[g] = _mark(g == baseline, v, ratio, direction, tolerance)
        row_values = {g: per.get(g) for g in groups}
        out.append(MetricRow(metric, units[metric], direction, row_values, ratios, marks))
    return tuple(out)


def _mark(is_baseline: bool, value: float | None, ratio: float | None, direction: Direction,
          tolerance: float) -> str:
    if value is None:
        return ""
    if is_baseline:
        return "baseline"
    if ratio is None:
        return "n/a"
    if direction is Direction.NONE:
        return ""
    if abs(ratio - 1) <= tolerance:
        return "same"
    up = ratio > 1
    return "better" if up == (direction is Direction.HIGHER) else "worse"
