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
        table = table.filter(pc.field("started_at") >= start)
        if table.num_rows == 0:
            raise ConfigError(f"--since {since:%Y-%m-%d}: no runs on or after that date")

    ranked = _rank_runs(table)  # run_id, group, started_at, rank (0 = latest)
    if last is not None:
        ranked = [r for r in ranked if r[3] < last]
    groups = tuple(sorted({r[1] for r in ranked}))
    baseline, reason = _baseline(groups, baseline)
    window_rows = table
    if last is not None:
        window_rows = table.filter(pc.field("run_id").isin(pa.array([r[0] for r in ranked], pa.string())))
    latest_ids = pa.array([r[0] for r in ranked if r[3] == 0], pa.string())
    latest = table.filter(pc.field("run_id").isin(latest_ids))

    measured = _measured(window_rows)
    directed_metrics = pa.array(_directed(measured), pa.string())
    hist_ranks = pa.table({
        "run_id": pa.array([r[0] for r in ranked if r[3] <= rule.history], pa.string()),
        "rank": pa.array([r[3] for r in ranked if r[3] <= rule.history], pa.int32()),
    })
    recent = pc.field("metric").isin(directed_metrics) & pc.field("run_id").isin(hist_ranks["run_id"])
    points = (measured.filter(recent)
              .select(["group", "run_id", "metric", "value", "unit"])
              .group_by(["group", "run_id", "metric"]).aggregate([("value", "mean"), ("unit", "max")])
              .rename_columns(["group", "run_id", "metric", "value", "unit"])
              .join(hist_ranks, "run_id"))

    per_group = {r[1]: sum(1 for x in ranked if x[1] == r[1]) for r in ranked if r[3] == 0}
    window = _describe_window(since, last, per_group)
    history = None
    if keep_history:
        history = (measured.filter(pc.field("metric").isin(directed_metrics))
                   .select(["group", "run_id", "started_at", "metric", "value"]))
    return Comparison(
        by=by, groups=groups, baseline=baseline, baseline_reason=reason, window=window,
        runs=_run_info(latest, per_group), requirements=_requirement_order(latest),
        matrix=_matrix(latest), metrics=_metrics(latest, groups, baseline, tolerance),
        regressions=tuple(detect(points, rule)), rule=rule, history=history,
    )


def _rank_runs(table: pa.Table) -> list[tuple[str, str, datetime, int]]:
    """(run_id, group, started_at, rank) for every run; rank 0 is the group's latest."""
    runs = table.group_by("run_id").aggregate([("group", "min"), ("started_at", "min")])
    runs = runs.sort_by([("group_min", "ascending"), ("started_at_min", "descending"),
                         ("run_id", "descending")])
    out: list[tuple[str, str, datetime, int]] = []
    previous, rank = None, 0
    for run_id, group, started in zip(runs["run_id"].to_pylist(), runs["group_min"].to_pylist(),
                                      runs["started_at_min"].to_pylist(), strict=True):
        rank = rank + 1 if group == previous else 0
        previous = group
        out.append((run_id, group, started, rank))
    return out


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
    """Rows with a finite numeric value, regression rows excluded (they repeat the metric)."""
    value = table["value"]
    regression_row = pc.fill_null(pc.equal(table["check_id"], REGRESSION_CHECK), False)
    ok = pc.and_(pc.is_finite(value), pc.invert(regression_row))
    ok = pc.and_(ok, pc.is_valid(table["metric"]))
    return table.filter(pc.fill_null(ok, False))


def _directed(measured: pa.Table) -> list[str]:
    return [m for m in pc.unique(measured["metric"]).to_pylist() if direction_of(m) is not Direction.NONE]


def _run_info(latest: pa.Table, per_group: dict[str, int]) -> dict[str, RunInfo]:
    meta = latest.group_by("group").aggregate([
        ("run_id", "min"), ("started_at", "min"), ("platform", "min"), ("cluster", "max"),
        ("k8s_version", "max"), ("accelerator", "max"), ("suite_version", "max"),
    ])
    counts = latest.group_by(["group", "status"]).aggregate([("status", "count")])
    by_group: dict[str, dict[str, int]] = {}
    for g, s, n in zip(counts["group"].to_pylist(), counts["status"].to_pylist(),
                       counts["status_count"].to_pylist(), strict=True):
        by_group.setdefault(g, {})[s] = n
    drivers = _drivers(latest)
    out = {}
    for row in meta.to_pylist():
        g = row["group"]
        out[g] = RunInfo(
            group=g, run_id=row["run_id_min"], started_at=row["started_at_min"],
            platform=row["platform_min"] or "",
            cluster=row["cluster_max"] or "", k8s_version=row["k8s_version_max"] or "",
            accelerator=row["accelerator_max"] or "", suite_version=row["suite_version_max"] or "",
            driver=drivers.get(g, ""), runs_in_window=per_group.get(g, 0), counts=by_group.get(g, {}),
        )
    return dict(sorted(out.items()))


DRIVER_KEYS = ("driver", "driver_version", "driverversion")
_DRIVER_RE = re.compile(r"driver[ _-]?(?:version)?\W{0,3}(\d+(?:\.\d+)+)", re.IGNORECASE)


def _drivers(latest: pa.Table) -> dict[str, str]:
    """The accelerator driver version, where provision recorded one (evidence JSON or message)."""
    rows = (latest.filter(pc.field("check_id").isin(list(DRIVER_CHECKS)))
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
    rows = latest.filter(pc.field("requirement_id").is_valid())
    if rows.num_rows == 0:
        return {}
    rows = rows.append_column("severity", pc.index_in(rows["status"], pa.array(STATUS_ORDER)))
    rows = rows.append_column("strength", pc.index_in(rows["level"], pa.array(LEVEL_ORDER)))
    agg = rows.group_by(["requirement_id", "group"]).aggregate([
        ("severity", "max"), ("strength", "max"), ("check_id", "count"),
    ])
    worst = (rows.join(agg, ["requirement_id", "group"])
             .filter(pc.field("severity") == pc.field("severity_max")))
    messages = {(r["requirement_id"], r["group"]): r["message"] or "" for r in
                worst.select(["requirement_id", "group", "message"]).to_pylist()}
    out: dict[str, dict[str, Cell]] = {}
    for r in agg.to_pylist():
        sev, strength = r["severity_max"], r["strength_max"]
        out.setdefault(r["requirement_id"], {})[r["group"]] = Cell(
            status=STATUS_ORDER[sev] if sev is not None else "error",
            level=LEVEL_ORDER[strength] if strength is not None else "INFO",
            checks=r["check_id_count"], message=messages.get((r["requirement_id"], r["group"]), ""),
        )
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
