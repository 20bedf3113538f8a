"""junit.xml (for a submission) and junit-full.xml (every row), as JUnit consumers read them.

junit.xml holds the CNCF requirements only, one <testcase> per requirement the judged version lists,
named after the upstream automated test where one exists (`TestSecureAcceleratorAccess`, from
kubernetes-sigs/ai-conformance test/ai_conformance_test.go), else the requirement id; classname = the
template category. Verified: passed; failed/partial: <failure>; error: <error>; unverified, N/A and not
checked: <skipped> with the reason. PRODUCT.yaml links to it. Nothing upstream parses it: it is evidence
for a human reviewer.

junit-full.xml: one <testcase> per row, the report step's own rows included; name = the row's stable
name (`check_id` or `check_id[metric]`), classname = the step.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from kaic.reports.model import Report, RequirementSummary, Verdict, fmt_value
from kaic.results import ResultRow, Status

FILENAME = "junit.xml"
FULL_FILENAME = "junit-full.xml"
# CNCF requirement id -> the upstream automated test that covers it.
UPSTREAM_TESTS: dict[str, str] = {"secure_accelerator_access": "TestSecureAcceleratorAccess"}


def testcase_name(requirement_id: str) -> str:
    return UPSTREAM_TESTS.get(requirement_id, requirement_id)


def _details(row: ResultRow) -> str:
    parts = [f"level: {row.level.value}", f"requirement: {row.requirement_id or '-'}"]
    if row.metric:
        parts.append(f"{row.metric} = {fmt_value(row) or 'n/a'}")
    if row.threshold:
        parts.append(f"threshold: {row.threshold}")
    if row.message:
        parts.append(f"message: {row.message}")
    if row.evidence:
        parts.append(f"evidence: {row.evidence}")
    return "\n".join(parts)


def _testcase(suite: ET.Element, row: ResultRow) -> None:
    case = ET.SubElement(suite, "testcase", name=row.name, classname=row.step)
    message = row.message or row.status.value
    if row.status is Status.FAILED:
        ET.SubElement(case, "failure", message=message, type=row.level.value).text = _details(row)
    elif row.status is Status.ERROR:
        ET.SubElement(case, "error", message=message, type=row.level.value).text = _details(row)
    elif row.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", message=message)
    else:
        ET.SubElement(case, "system-out").text = _details(row)


def _suite(report: Report, name: str, counts: dict[str, int], tests: int) -> tuple[ET.Element, ET.Element]:
    info = report.info
    attrs = {
        "tests": str(tests), "failures": str(counts["failed"]), "errors": str(counts["error"]),
        "skipped": str(counts["skipped"]), "time": f"{info.duration_s:.3f}",
    }
    root = ET.Element("testsuites", {"name": "kaic", **attrs})
    suite = ET.SubElement(root, "testsuite", {
        "name": f"{name} {info.run_id}", "timestamp": info.started_at.isoformat(),
        "hostname": info.cluster or info.platform, **attrs,
    })
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("run_id", info.run_id), ("suite_version", info.suite_version), ("platform", info.platform),
        ("cluster", info.cluster), ("k8s_version", info.k8s_version), ("accelerator", info.accelerator),
        ("cncf_k8s_version", report.k8s_version), ("run_status", report.headline),
        ("cncf_verdict", report.cncf_verdict),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    return root, suite


def _requirement_case(suite: ET.Element, s: RequirementSummary) -> str:
    case = ET.SubElement(suite, "testcase", name=testcase_name(s.id), classname=s.requirement.category)
    lines = [f"requirement: {s.id} ({s.level.value if s.level else '-'})", f"kaic verdict: {s.verdict.value}"]
    lines += [f"{r.name}: {r.status.value}" + (f": {r.message}" if r.message else "")
              + (f" [evidence: {r.evidence}]" if r.evidence else "") for r in s.rows]
    text = "\n".join(lines)
    if s.verdict in (Verdict.FAILED, Verdict.PARTIAL):
        bad = "; ".join(f"{r.name}: {r.message}" for r in s.rows if r.status is Status.FAILED)
        ET.SubElement(case, "failure", message=bad or s.verdict.value, type=s.verdict.value).text = text
        return "failed"
    if s.verdict is Verdict.ERROR:
        ET.SubElement(case, "error", message="a check errored", type="error").text = text
        return "error"
    if s.verdict is Verdict.VERIFIED:
        ET.SubElement(case, "system-out").text = text
        return "passed"
    reason = {Verdict.NOT_APPLICABLE: "N/A (profile)", Verdict.UNVERIFIED: "unverified: behaviour not observed",
              Verdict.NOT_CHECKED: "not checked"}[s.verdict]
    ET.SubElement(case, "skipped", message=reason).text = text
    return "skipped"


def render(report: Report) -> bytes:
    """The submission junit: the CNCF requirements the judged version lists, one testcase each."""
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    root, suite = _suite(report, f"CNCF AI Conformance v{report.k8s_version}", counts, len(report.listed))
    for s in report.listed:
        counts[_requirement_case(suite, s)] += 1
    for el in (root, suite):
        el.set("failures", str(counts["failed"]))
        el.set("errors", str(counts["error"]))
        el.set("skipped", str(counts["skipped"]))
    return _finish(root)


def render_full(report: Report) -> bytes:
    """Every row of the run, the report step's own included."""
    root, suite = _suite(report, "kaic conformance", report.counts, len(report.rows))
    for row in report.rows:
        _testcase(suite, row)
    return _finish(root)


def _finish(root: ET.Element) -> bytes:
    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml + b"\n"
