"""PRODUCT.yaml drafts: an official CNCF checklist template, filled with what a kaic run observed.

The template is loaded round-trip (ruamel.yaml) so ids, descriptions, levels, key order and
comments stay exactly as CNCF wrote them; kaic fills only `status`, `evidence` and `notes` (and
the metadata fields it knows). The status rule (see docs/reports.md):

| kaic verdict | status written |
|---|---|
| verified (a READ/ACTIVE check passed, none failed or errored) | Implemented |
| partial (a check failed, another passed) | Partially Implemented |
| failed (a check failed, none passed) | Not Implemented |
| error, unverified (skipped only), not checked | left as it is (the vendor's) with a note |

So `Implemented` always has a passing check behind it, cited as `file://.../junit.xml#<testcase>`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from kaic import catalog
from kaic.errors import ConfigError
from kaic.reports import e2e_log, junit
from kaic.reports.guidance import evidence_needed
from kaic.reports.model import Report, RequirementSummary, Verdict
from kaic.results import Level, ResultRow, Status

FILENAME = "PRODUCT.yaml"
IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED = "Implemented", "Partially Implemented", "Not Implemented"
STATUS_FOR: dict[Verdict, str] = {
    Verdict.VERIFIED: IMPLEMENTED, Verdict.PARTIAL: PARTIAL, Verdict.FAILED: NOT_IMPLEMENTED,
}
CONFORMANCE_URL_KEY = "k8sConformanceUrl"
_MESSAGE_MAX = 240
_BAD = (Status.FAILED, Status.ERROR)
_ITEM_KEYS = ("id", "description", "level")
_MUST_NOTE = " This is a MUST at this version: it has to be Implemented to conform."


def conformance_url_placeholder(version: str) -> str:
    return ("[URL to k8s-conformance submission, e.g., "
            f"https://github.com/cncf/k8s-conformance/tree/master/v{version}/product-name]")


def packaged_template(version: str) -> tuple[str, str]:
    """The official template shipped with kaic (copied byte for byte from CNCF): (text, source)."""
    name = f"AIConformance-{version}.yaml"
    res = resources.files("kaic.reports").joinpath("templates", name)
    return res.read_text(encoding="utf-8"), f"packaged template {name}"


def read_template(path: Path) -> tuple[str, str]:
    """The template's text (bounded: size, UTF-8, no NUL bytes) and its source for messages."""
    from kaic.safeload import read_text

    return read_text(path, f"--template {path}"), f"--template {path}"


@dataclass(frozen=True)
class Template:
    doc: CommentedMap
    version: str  # '1.35'
    yaml: YAML


def parse_template(text: str, source: str) -> Template:
    """Parse and validate a checklist template; any defect is a one-line ConfigError naming `source`."""
    try:
        _, indent, block_seq_indent = load_yaml_guess_indent(text)
        y = YAML()
        y.preserve_quotes = True
        y.width = 100_000  # never re-wrap CNCF's long descriptions
        y.indent(mapping=2, sequence=indent or 4, offset=block_seq_indent or 0)
        doc = y.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    if not isinstance(doc, CommentedMap) or not isinstance(doc.get("metadata"), CommentedMap) \
            or not isinstance(doc.get("spec"), CommentedMap):
        raise ConfigError(f"{source}: not an AI conformance checklist (needs mappings 'metadata' and 'spec')")
    raw_version = str(doc["metadata"].get("kubernetesVersion", ""))
    version = catalog.check_k8s_version(raw_version, f"{source}: metadata.kubernetesVersion")
    for category, items in doc["spec"].items():
        if not isinstance(items, CommentedSeq):
            raise ConfigError(f"{source}: spec.{category} is not a list of requirements")
        for n, item in enumerate(items):
            if not isinstance(item, CommentedMap) or not all(k in item for k in _ITEM_KEYS):
                raise ConfigError(f"{source}: spec.{category}[{n}] lacks id, description or level")
    return Template(doc, version, y)


def template_version(text: str, source: str, wanted: str | None = None) -> str:
    """The template's Kubernetes version; a template for another version than `wanted` is bad input."""
    version = parse_template(text, source).version
    if wanted is not None and wanted != version:
        raise ConfigError(f"{source}: template is for Kubernetes v{version} but --k8s-version is {wanted}")
    return version


@dataclass(frozen=True)
class Entry:
    """What kaic writes for one requirement: status None means 'leave the template's value'."""

    status: str | None
    evidence: tuple[str, ...]
    note: str


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def _said(rows: list[ResultRow]) -> str:
    return "; ".join(f"{r.name}: {_short(r.message)}" if r.message else r.name for r in rows)


def _where(report: Report) -> str:
    i = report.info
    bits = [i.platform] + [b for b in (i.cluster and f"cluster {i.cluster}",
                                       i.k8s_version and f"Kubernetes {i.k8s_version}") if b]
    return f"kaic run {i.run_id} ({', '.join(bits)})"


def decide(summary: RequirementSummary, level: Level | None, report: Report, evidence_base: str) -> Entry:
    """The status rule for one requirement (pure): kaic's verdict -> status, evidence and a note."""
    where, verdict = _where(report), summary.verdict
    needed = f"Evidence still needed: {evidence_needed(summary.id)}."
    must = _MUST_NOTE if level is Level.MUST else ""
    bad = _said(summary.with_status(*_BAD))
    skipped = summary.with_status(Status.SKIPPED)
    skip_note = f" Not verified by kaic here: {_said(skipped)}." if skipped else ""
    if verdict in (Verdict.VERIFIED, Verdict.PARTIAL):
        junit_uri = f"{evidence_base}/{junit.FILENAME}"
        links = dict.fromkeys(f"{junit_uri}#{r.name}" for r in summary.verifying)
        evidence = (*links, f"{evidence_base}/{e2e_log.FILENAME}")
        if verdict is Verdict.VERIFIED:
            return Entry(IMPLEMENTED, evidence, f"{where} verified: {_said(summary.verifying)}.{skip_note}")
        return Entry(PARTIAL, evidence,
                     f"{where} passed: {_said(summary.verifying)}; but failed: {bad}."
                     f"{skip_note} Fix the failing checks and rerun before claiming Implemented.{must}")
    if verdict is Verdict.FAILED:
        return Entry(NOT_IMPLEMENTED, (),
                     f"{where} observed a failure: {bad}.{skip_note}{must} {needed}")
    if verdict is Verdict.ERROR:
        return Entry(None, (), f"{where} could not evaluate this, a check errored: "
                     f"{bad}. Rerun kaic.{must} {needed}")
    if verdict is Verdict.UNVERIFIED:
        seen = _said(skipped) if skipped else "no READ or ACTIVE check passed"
        return Entry(None, (), f"{where} could not verify this: {seen}.{must} {needed}")
    checks = ", ".join(c.check_id for c in catalog.checks_for(summary.id)) or "none yet"
    return Entry(None, (), f"{where} has no result for this requirement (kaic checks it with: {checks}; "
                 f"the step did not run or did not reach them).{must} {needed}")


def _unknown(rid: str, report: Report) -> Entry:
    return Entry(None, (), f"{_where(report)}: kaic has no check for {rid!r}; "
                 "evidence must come from the vendor (documentation or a test log).")


def _is_placeholder(value: Any) -> bool:
    text = str(value or "").strip()
    return not text or (text.startswith("[") and text.endswith("]"))


def _quoted(text: str) -> str:
    quoted: str = DoubleQuotedScalarString(text)  # keeps the template's "double-quoted" style
    return quoted


def _fill_item(item: CommentedMap, entry: Entry) -> None:
    if entry.status is not None:
        item["status"] = _quoted(entry.status)
    existing = [str(e) for e in item.get("evidence") or []]
    merged = list(dict.fromkeys([*existing, *entry.evidence]))
    if merged != existing:
        item["evidence"] = CommentedSeq([_quoted(e) for e in merged])
    old = str(item.get("notes") or "").strip()
    item["notes"] = _quoted(f"{old} | kaic: {entry.note}" if old else entry.note)


def _fill_metadata(meta: CommentedMap, version: str, report: Report) -> None:
    meta["kubernetesVersion"] = f"v{version}"
    if report.info.k8s_version and _is_placeholder(meta.get("platformVersion")):
        meta["platformVersion"] = _quoted(report.info.k8s_version)
    if CONFORMANCE_URL_KEY not in meta:
        keys = list(meta)
        after = keys.index("contactEmailAddress") + 1 if "contactEmailAddress" in keys else len(keys)
        meta.insert(after, CONFORMANCE_URL_KEY, _quoted(conformance_url_placeholder(version)))
        if after == len(keys) and keys[-1] in meta.ca.items:  # the blank line after the block moves down too
            meta.ca.items[CONFORMANCE_URL_KEY] = meta.ca.items.pop(keys[-1])


def draft(template_text: str, source: str, report: Report, evidence_base: str) -> str:
    """The filled checklist as YAML text. `evidence_base` is the URI of the folder holding junit.xml and
    e2e.log (`file:///abs/report`, or a submission-relative `file://results`)."""
    tpl = parse_template(template_text, source)
    if tpl.version != report.k8s_version:
        raise ConfigError(f"{source}: template is for Kubernetes v{tpl.version} but the report is for "
                          f"v{report.k8s_version} (pass a matching --k8s-version)")
    by_id = {s.id: s for s in report.requirements}
    evidence_base = evidence_base.rstrip("/")
    for items in tpl.doc["spec"].values():
        for item in items:
            rid = str(item["id"])
            level = _template_level(item.get("level"))
            summary = by_id.get(rid)
            entry = decide(summary, level, report, evidence_base) if summary else _unknown(rid, report)
            _fill_item(item, entry)
    _fill_metadata(tpl.doc["metadata"], tpl.version, report)
    out = io.StringIO()
    i = report.info
    out.write(f"# Draft written by kaic {i.suite_version} from run {i.run_id} ({i.finished_at:%Y-%m-%d}). "
              "Review every status, evidence and note, and fill the [placeholders], before submitting.\n")
    tpl.yaml.dump(tpl.doc, out)
    return out.getvalue()


def _template_level(value: Any) -> Level | None:
    try:
        return Level(str(value))
    except ValueError:
        return None

