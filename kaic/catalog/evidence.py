"""The evidence rule, in one place: what a requirement's rows allow kaic to claim.

A requirement is `verified` (PRODUCT.yaml: Implemented) only when the behaviour its test plan names was
observed on the cluster under test: an ACTIVE check passed. A READ check can prove a requirement only
where the test plan itself is read-only (`dra_support`, KAR-0051: the resource.k8s.io kinds are served).
Objects seen without their behaviour (CRDs, DaemonSets, labels) give `unverified`; probes write them as
skipped rows whose message starts with "unverified: " and says what was seen and what is missing.
Absence, or an observed failure, is a failed row: Not Implemented. `N/A` comes only from the profile,
for a conditional requirement, with its justification (a skipped row starting with "N/A: ").

Pure: rows in, a verdict out. `kaic.reports` and the PRODUCT.yaml drafts use nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from kaic.catalog.model import CheckSpec, Probe
from kaic.results import Outcome, ResultRow, Status

# Requirements whose test plan is itself read-only: a READ probe that passed proves them.
READ_ONLY_PLANS: frozenset[str] = frozenset({"dra_support"})

# Requirements whose template text is conditional ("If the platform provides...", "For accelerators that
# support..."): the only ones a profile may declare N/A, with a justification (the CNCF FAQ).
CONDITIONAL: Mapping[str, str] = {
    "cluster_autoscaling": "If the platform provides a cluster autoscaler or an equivalent mechanism",
    "pod_autoscaling": "If the platform supports the HorizontalPodAutoscaler",
    "gpu_sharing": "For accelerators that support static GPU sharing",
    "virtualized_accelerator": "For accelerators that support virtualized accelerator technologies",
    "high_performance_networking": "If high performance pod-to-pod communication is needed",
    "accelerator_metrics": "For supported accelerator types",
}
# Justifications the FAQ rules out ("we don't support it" is not one).
_NOT_A_JUSTIFICATION = ("not supported", "don't support", "do not support", "unsupported", "not implemented")

UNVERIFIED = "unverified: "
NOT_APPLICABLE = "N/A: "


class Verdict(StrEnum):
    VERIFIED = "verified"  # behaviour observed, nothing failed: Implemented
    PARTIAL = "partial"  # observed to work in part, a check failed: Partially Implemented
    FAILED = "failed"  # absent, or observed failing: Not Implemented
    NOT_APPLICABLE = "N/A"  # the profile declared a conditional requirement N/A, with a justification
    ERROR = "error"  # a check crashed: kaic cannot tell
    UNVERIFIED = "unverified"  # objects seen or nothing run: left for the vendor with a note
    NOT_CHECKED = "not checked"  # no row at all


def presence(check_id: str, seen: str, missing: str, evidence: str | None = None) -> Outcome:
    """Objects seen, behaviour not observed: never passed. `missing` names the behaviour still to show."""
    return Outcome(check_id, Status.SKIPPED, f"{UNVERIFIED}{seen}; missing: {missing}", evidence=evidence)


def not_applicable(check_id: str, justification: str) -> Outcome:
    return Outcome(check_id, Status.SKIPPED, f"{NOT_APPLICABLE}{justification}")


def justification_problem(requirement_id: str, justification: str) -> str | None:
    """Why a profile may not declare this requirement N/A (None when it may)."""
    if requirement_id not in CONDITIONAL:
        conditional = ", ".join(CONDITIONAL)
        return f"{requirement_id} is not conditional; N/A is allowed only for {conditional}"
    text = " ".join(justification.split())
    if len(text) < 20:
        return "needs a justification (a sentence on why the requirement's context does not apply)"
    if any(p in text.lower() for p in _NOT_A_JUSTIFICATION):
        return "'we don't support it' is not a justification (CNCF FAQ): say why the context does not apply"
    return None


def proves(spec: CheckSpec | None, status: Status) -> bool:
    """A passed row proves its requirement: an ACTIVE check, or a READ check of a read-only test plan."""
    if spec is None or status is not Status.PASSED or spec.requirement_id is None:
        return False
    return spec.probe is Probe.ACTIVE or (spec.probe is Probe.READ and spec.requirement_id in READ_ONLY_PLANS)


def is_not_applicable(row: ResultRow) -> bool:
    return row.status is Status.SKIPPED and row.message.startswith(NOT_APPLICABLE)


def is_unverified(row: ResultRow) -> bool:
    return row.status is Status.SKIPPED and row.message.startswith(UNVERIFIED)


def verdict(rows: Sequence[ResultRow], checks: Mapping[str, CheckSpec]) -> Verdict:
    """The verdict for one requirement's rows (`checks`: the catalog, check id -> spec)."""
    if not rows:
        return Verdict.NOT_CHECKED
    proven = any(proves(checks.get(r.check_id), r.status) for r in rows)
    statuses = {r.status for r in rows}
    if Status.FAILED in statuses:
        return Verdict.PARTIAL if proven else Verdict.FAILED
    if Status.ERROR in statuses:
        return Verdict.ERROR
    if proven:
        return Verdict.VERIFIED
    if any(is_not_applicable(r) for r in rows):
        return Verdict.NOT_APPLICABLE
    return Verdict.UNVERIFIED


def justification(rows: Sequence[ResultRow]) -> str:
    """The profile's N/A justification, as the rows carry it."""
    for r in rows:
        if is_not_applicable(r):
            return r.message[len(NOT_APPLICABLE):]
    return ""
