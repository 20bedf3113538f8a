"""The catalog: CNCF requirements and every kaic check, in one explicit registry.

`check(id)` is how steps and the harness look a check up; an id not in the table is an error,
so a step cannot emit an uncatalogued row.
"""

from __future__ import annotations

from kaic.catalog import checks_provision, checks_steps
from kaic.catalog.model import CheckSpec, Direction, MetricSpec, Probe
from kaic.catalog.requirements import (
    BY_ID,
    DEFAULT_K8S_VERSION,
    K8S_VERSIONS,
    REQUIREMENTS,
    Requirement,
    check_k8s_version,
    for_version,
)
from kaic.results import Level

__all__ = [
    "BY_ID", "CHECKS", "DEFAULT_K8S_VERSION", "K8S_VERSIONS", "REQUIREMENTS", "CheckSpec", "Direction",
    "MetricSpec", "Probe", "Requirement", "check", "check_k8s_version", "checks_for", "for_version",
    "level_of", "level_version", "metric_spec",
]


def _registry(*groups: tuple[CheckSpec, ...]) -> dict[str, CheckSpec]:
    out: dict[str, CheckSpec] = {}
    for group in groups:
        for spec in group:
            if spec.check_id in out:
                raise ValueError(f"duplicate check id {spec.check_id!r} in the catalog")
            if spec.requirement_id is not None and spec.requirement_id not in BY_ID:
                raise ValueError(f"check {spec.check_id!r} names unknown requirement {spec.requirement_id!r}")
            out[spec.check_id] = spec
    return out


CHECKS: dict[str, CheckSpec] = _registry(
    checks_provision.CHECKS, checks_steps.DATA, checks_steps.TRAIN, checks_steps.SERVE, checks_steps.TEARDOWN,
    checks_steps.REPORT, checks_steps.HARNESS,
)


def check(check_id: str) -> CheckSpec:
    try:
        return CHECKS[check_id]
    except KeyError:
        raise KeyError(f"check {check_id!r} is not in the catalog (kaic/catalog)") from None


def checks_for(requirement_id: str) -> list[CheckSpec]:
    return [c for c in CHECKS.values() if c.requirement_id == requirement_id]


def level_version(k8s_version: str) -> str:
    """The template version whose levels apply to a cluster: its own, else the nearest kaic knows
    (older clusters take the oldest template, newer ones the newest); no cluster takes the default."""
    if not k8s_version:
        return DEFAULT_K8S_VERSION
    v = k8s_version.strip().lstrip("v")
    try:
        minor = int(v.split(".")[1])
    except (IndexError, ValueError):
        return DEFAULT_K8S_VERSION
    known = [int(x.split(".")[1]) for x in K8S_VERSIONS]
    return f"1.{min(max(minor, known[0]), known[-1])}"


def level_of(spec: CheckSpec, k8s_version: str) -> Level:
    """A CNCF check takes its requirement's level at this version (INFO where the version omits it)."""
    if spec.requirement_id is None:
        return spec.level
    return BY_ID[spec.requirement_id].level(k8s_version) or Level.INFO


def metric_spec(metric: str) -> MetricSpec | None:
    for c in CHECKS.values():
        for m in c.metrics:
            if m.matches(metric):
                return m
    return None
