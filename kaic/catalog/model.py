"""What a catalog entry is: one kaic check, its evidence role and its metrics."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kaic.results import Level


class Probe(StrEnum):
    READ = "read"  # answered from the API server or the machine, no workload created
    ACTIVE = "active"  # creates a workload and observes it
    ATTEST = "attest"  # needs a human link beyond what can be observed
    MEASURE = "measure"  # kaic's own figure (throughput, latency...)


class Direction(StrEnum):
    HIGHER = "higher"  # higher is better
    LOWER = "lower"
    NONE = "none"  # informational, no better/worse


@dataclass(frozen=True)
class MetricSpec:
    name: str  # stable across platforms; a family is written 'name@' and rows use 'name@<variant>'
    unit: str
    direction: Direction = Direction.NONE

    def matches(self, metric: str) -> bool:
        if self.name.endswith("@"):
            return metric.startswith(self.name)
        return metric == self.name


@dataclass(frozen=True)
class CheckSpec:
    check_id: str  # stable: '<step>.<what>'
    step: str
    title: str
    probe: Probe
    requirement_id: str | None = None  # CNCF id, or None for kaic's own checks
    level: Level = Level.INFO  # used when requirement_id is None (a CNCF check takes its requirement's level)
    metrics: tuple[MetricSpec, ...] = ()
