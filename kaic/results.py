"""One result model: a row per check, a fixed status vocabulary, run status derived, never stored.

Steps produce `Outcome`s (what a check saw); the step harness stamps them with the run's
context and the catalog's requirement id and level to make `ResultRow`s, the schema of the
Parquet dataset (see docs/results.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    INFO = "INFO"


@dataclass(frozen=True)
class Outcome:
    """What one check observed. `metric`/`value`/`unit` when it measured something."""

    check_id: str
    status: Status
    message: str = ""
    metric: str | None = None
    value: float | None = None
    unit: str | None = None
    threshold: str | None = None
    evidence: str | None = None

    @staticmethod
    def skipped(check_id: str, reason: str) -> Outcome:
        return Outcome(check_id, Status.SKIPPED, reason)

    @staticmethod
    def measured(check_id: str, metric: str, value: float, unit: str, message: str = "") -> Outcome:
        """A measurement with no threshold: passed when the value is finite, error otherwise."""
        ok = math.isfinite(value)
        return Outcome(
            check_id, Status.PASSED if ok else Status.ERROR, message or ("" if ok else f"{metric} is {value}"),
            metric=metric, value=value, unit=unit,
        )

    @staticmethod
    def verdict(check_id: str, ok: bool, message: str, **fields: Any) -> Outcome:
        return Outcome(check_id, Status.PASSED if ok else Status.FAILED, message, **fields)


@dataclass(frozen=True)
class RunContext:
    """What every row of a run shares. Filled by provision's fingerprint; read by later steps."""

    run_id: str
    suite_version: str
    started_at: datetime
    platform: str
    cluster: str = ""
    k8s_version: str = ""
    accelerator: str = ""

    def to_json(self) -> dict[str, str]:
        d = asdict(self)
        d["started_at"] = self.started_at.isoformat()
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> RunContext:
        return RunContext(**{**d, "started_at": datetime.fromisoformat(d["started_at"])})

    def with_fingerprint(self, cluster: str, k8s_version: str, accelerator: str) -> RunContext:
        return replace(self, cluster=cluster, k8s_version=k8s_version, accelerator=accelerator)


@dataclass(frozen=True)
class ResultRow:
    run_id: str
    suite_version: str
    started_at: datetime
    platform: str
    cluster: str
    k8s_version: str
    accelerator: str
    step: str
    check_id: str
    requirement_id: str | None
    level: Level
    status: Status
    metric: str | None = None
    value: float | None = None
    unit: str | None = None
    threshold: str | None = None
    message: str = ""
    evidence: str | None = None
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def name(self) -> str:
        """Stable test-case name: the check id, plus the metric where one check yields several."""
        return f"{self.check_id}[{self.metric}]" if self.metric else self.check_id


COLUMNS: tuple[str, ...] = (
    "run_id", "suite_version", "started_at", "platform", "cluster", "k8s_version", "accelerator", "step",
    "check_id", "requirement_id", "level", "status", "metric", "value", "unit", "threshold", "message",
    "evidence", "recorded_at",
)


def row_to_dict(row: ResultRow) -> dict[str, Any]:
    d = asdict(row)
    d["level"] = row.level.value
    d["status"] = row.status.value
    return d


def row_from_dict(d: dict[str, Any]) -> ResultRow:
    value = d.get("value")
    fields: dict[str, Any] = {k: d.get(k) for k in COLUMNS if k in d}
    fields["level"] = Level(d["level"])
    fields["status"] = Status(d["status"])
    fields["value"] = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    return ResultRow(**fields)


def blocking(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """Rows that make a run fail: a MUST check that failed or errored."""
    return [r for r in rows if r.level is Level.MUST and r.status in (Status.FAILED, Status.ERROR)]


def run_status(rows: Sequence[ResultRow]) -> Status:
    """Derived: failed if a MUST failed, error if a MUST errored, passed otherwise (skips are not failures)."""
    bad = blocking(rows)
    if any(r.status is Status.FAILED for r in bad):
        return Status.FAILED
    if bad:
        return Status.ERROR
    return Status.PASSED


def exit_code(rows: Sequence[ResultRow]) -> int:
    """0 when every evaluated MUST passed; 1 when one failed or errored."""
    return 0 if run_status(rows) is Status.PASSED else 1


def counts(rows: Iterable[ResultRow]) -> dict[str, int]:
    out = {s.value: 0 for s in Status}
    for r in rows:
        out[r.status.value] += 1
    return out
