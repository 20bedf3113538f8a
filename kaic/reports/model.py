"""What every report renders: a run's rows, its metadata and a verdict per CNCF requirement.

Pure: rows in, an immutable `Report` out. The verdict per requirement is the evidence rule of
`kaic.catalog.evidence` (also the PRODUCT.yaml rule, see docs/reports.md): Implemented only from observed
behaviour; objects alone are `unverified`; absence or an observed failure is `failed`; N/A only from the
profile. Levels are re-derived at the version the report judges against, so a run re-judged at 1.36 no
longer counts `dra_support`, which 1.36 dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from kaic import catalog
from kaic.catalog import Requirement
from kaic.catalog.evidence import Verdict, proves
from kaic.catalog.evidence import verdict as evidence_verdict
from kaic.results import Level, ResultRow, Status, counts, run_status

__all__ = ["NO_CNCF_VERDICT", "Report", "RequirementSummary", "RunInfo", "Verdict", "summarize", "verdict_of"]

NO_CNCF_VERDICT = "no CNCF verdict"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    suite_version: str
    platform: str
    cluster: str
    k8s_version: str  # as the cluster reported it ('' without a cluster)
    accelerator: str
    started_at: datetime
    finished_at: datetime  # the last row's recorded_at

    @staticmethod
    def from_rows(rows: Sequence[ResultRow]) -> RunInfo:
        if not rows:
            raise ValueError("a report needs at least one row")
        first = rows[0]

        def known(attr: str) -> str:  # provision fills the fingerprint; earlier rows may lack it
            return next((str(getattr(r, attr)) for r in rows if getattr(r, attr)), "")

        return RunInfo(
            run_id=first.run_id, suite_version=first.suite_version, platform=first.platform,
            cluster=known("cluster"), k8s_version=known("k8s_version"), accelerator=known("accelerator"),
            started_at=min(r.started_at for r in rows), finished_at=max(r.recorded_at for r in rows),
        )

    @property
    def duration_s(self) -> float:
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


def _verifies(row: ResultRow) -> bool:
    return proves(catalog.CHECKS.get(row.check_id), row.status)


def verdict_of(rows: Sequence[ResultRow]) -> Verdict:
    return evidence_verdict(rows, catalog.CHECKS)


@dataclass(frozen=True)
class RequirementSummary:
    requirement: Requirement
    level: Level | None  # at the report's Kubernetes version; None where that version omits the id
    verdict: Verdict
    rows: tuple[ResultRow, ...]

    @property
    def id(self) -> str:
        return self.requirement.id

    def with_status(self, *statuses: Status) -> list[ResultRow]:
        return [r for r in self.rows if r.status in statuses]

    @property
    def verifying(self) -> list[ResultRow]:
        """Passed rows that prove the requirement (kaic.catalog.evidence.proves): what a draft may cite."""
        return [r for r in self.rows if _verifies(r)]


def summarize(rows: Sequence[ResultRow], k8s_version: str) -> tuple[RequirementSummary, ...]:
    """One summary per catalog requirement (all 16, catalog order), levels at `k8s_version`."""
    out = []
    for req in catalog.REQUIREMENTS:
        mine = tuple(r for r in rows if r.requirement_id == req.id)
        out.append(RequirementSummary(req, req.level(k8s_version), verdict_of(mine), mine))
    return tuple(out)


@dataclass(frozen=True)
class Report:
    info: RunInfo
    rows: tuple[ResultRow, ...]
    k8s_version: str  # the CNCF version the report is judged against ('1.35')
    requirements: tuple[RequirementSummary, ...]
    status: Status  # derived from the rows (kaic.results.run_status)
    counts: dict[str, int]

    @staticmethod
    def build(rows: Sequence[ResultRow], k8s_version: str) -> Report:
        # stable sort: rows within a step keep their order; CNCF levels re-derived at the judged version
        ordered = tuple(sorted((relevel(r, k8s_version) for r in rows), key=lambda r: _step_rank(r.step)))
        return Report(
            info=RunInfo.from_rows(ordered), rows=ordered, k8s_version=k8s_version,
            requirements=summarize(ordered, k8s_version), status=run_status(ordered), counts=counts(ordered),
        )

    @property
    def listed(self) -> tuple[RequirementSummary, ...]:
        """The requirements the report's Kubernetes version lists."""
        return tuple(s for s in self.requirements if s.level is not None)

    @property
    def cncf_verdict(self) -> str:
        """The CNCF line: 'conformant' only when every listed MUST is verified (or N/A); 'not conformant' when
        one failed; 'no CNCF verdict' when no MUST could be judged at all (a local run); else incomplete."""
        musts = [s for s in self.listed if s.level is Level.MUST]
        judged = [s for s in musts if s.verdict in (Verdict.VERIFIED, Verdict.PARTIAL, Verdict.FAILED,
                                                      Verdict.NOT_APPLICABLE)]
        if any(s.verdict in (Verdict.FAILED, Verdict.PARTIAL) for s in musts):
            return "not conformant"
        if not judged:
            return NO_CNCF_VERDICT
        if len(judged) == len(musts):
            return "conformant"
        return f"incomplete: {len(judged)} of {len(musts)} MUSTs verified"

    @property
    def headline(self) -> str:
        """What a report leads with: the run status, except that a passed run with no CNCF MUST verifiable
        says 'no CNCF verdict' (skips are not passes)."""
        if self.status is Status.PASSED and self.cncf_verdict == NO_CNCF_VERDICT:
            return NO_CNCF_VERDICT
        return self.status.value

    @property
    def metric_rows(self) -> list[ResultRow]:
        return [r for r in self.rows if r.metric is not None and r.value is not None]


def relevel(row: ResultRow, k8s_version: str) -> ResultRow:
    """A CNCF row's level at `k8s_version` (INFO where that version does not list the requirement)."""
    if row.requirement_id is None or row.requirement_id not in catalog.BY_ID:
        return row
    level = catalog.BY_ID[row.requirement_id].level(k8s_version) or Level.INFO
    return row if level is row.level else replace(row, level=level)


_STEP_ORDER = ("provision", "data", "train", "serve", "teardown", "report")


def _step_rank(step: str) -> int:
    return _STEP_ORDER.index(step) if step in _STEP_ORDER else len(_STEP_ORDER)


def default_k8s_version(rows: Sequence[ResultRow]) -> str:
    """The CNCF version a run is judged against: its cluster's minor version when kaic knows it, else 1.35."""
    for r in rows:
        if r.k8s_version:
            short = ".".join(r.k8s_version.strip().lstrip("v").split(".")[:2])
            if short in catalog.K8S_VERSIONS:
                return short
    return catalog.DEFAULT_K8S_VERSION


def fmt_value(row: ResultRow) -> str:
    if row.value is None:
        return ""
    return f"{row.value:g} {row.unit or ''}".rstrip()


def meta_pairs(report: Report) -> list[tuple[str, str]]:
    """The run metadata every human-readable report shows, in order."""
    i, c = report.info, report.counts
    return [
        ("platform", i.platform), ("cluster", i.cluster or "-"), ("Kubernetes", i.k8s_version or "-"),
        ("accelerator", i.accelerator or "-"),
        ("judged against", f"CNCF AI Conformance v{report.k8s_version}"),
        ("CNCF verdict", report.cncf_verdict),
        ("suite version", i.suite_version), ("started", i.started_at.isoformat()),
        ("duration", f"{i.duration_s:.1f} s"),
        ("checks", f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped, "
                   f"{c['error']} errors"),
    ]


_STATUS_ORDER = {Status.FAILED: 0, Status.ERROR: 1, Status.PASSED: 2, Status.SKIPPED: 3}


def failed_first(rows: Sequence[ResultRow]) -> list[ResultRow]:
    return sorted(rows, key=lambda r: _STATUS_ORDER[r.status])  # stable: step order within a status


FOLD_MIN = 5  # a check with at least this many rows (no metric) shows as one line with a sub-table


@dataclass(frozen=True)
class CheckLine:
    """One line of a report's check table: a row, or a folded check (e.g. 135 data.expectations rows)."""

    rows: tuple[ResultRow, ...]

    @property
    def folded(self) -> bool:
        return len(self.rows) > 1

    @property
    def status(self) -> Status:
        return min((r.status for r in self.rows), key=lambda st: _STATUS_ORDER[st])

    @property
    def first(self) -> ResultRow:
        return self.rows[0]

    @property
    def summary(self) -> str:
        if not self.folded:
            return self.first.message
        c = counts(self.rows)
        parts = [f"{c[k]} {k}" for k in ("passed", "failed", "error", "skipped") if c[k]]
        return f"{len(self.rows)} results: {', '.join(parts)}"


def check_lines(rows: Sequence[ResultRow]) -> list[CheckLine]:
    """Rows as check lines, failed first; a check's many metric-less rows fold into one line."""
    by_check: dict[str, list[ResultRow]] = {}
    for r in rows:
        if r.metric is None:
            by_check.setdefault(r.check_id, []).append(r)
    fold = {k for k, v in by_check.items() if len(v) >= FOLD_MIN}
    lines: list[CheckLine] = []
    seen: set[str] = set()
    for r in rows:
        if r.metric is None and r.check_id in fold:
            if r.check_id not in seen:
                seen.add(r.check_id)
                lines.append(CheckLine(tuple(by_check[r.check_id])))
            continue
        lines.append(CheckLine((r,)))
    return sorted(lines, key=lambda ln: _STATUS_ORDER[ln.status])
