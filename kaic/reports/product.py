"""PRODUCT.yaml drafts: an official CNCF checklist template, filled with what a kaic run observed.

The template is loaded round-trip (ruamel.yaml) so ids, descriptions, levels, key order and
comments stay exactly as CNCF wrote them; kaic fills only `status`, `evidence` and `notes` (and
the metadata fields it was given). The status rule is the evidence rule (kaic.catalog.evidence,
docs/reports.md):

| kaic verdict | status written |
|---|---|
| verified (the test plan's behaviour observed, nothing failed or errored) | Implemented |
| partial (a check failed, another proved part of it) | Partially Implemented |
| failed (absent, or observed failing) | Not Implemented |
| N/A (the profile declared a conditional requirement N/A) | N/A, the justification as notes |
| error, unverified (objects only, or skipped), not checked | left as it is (the vendor's) with a note |

Evidence links follow the CNCF validator (cncf/k8s-ai-conformance scripts/validate.go): a link that is
not http(s) is resolved as a path relative to PRODUCT.yaml's folder and must exist, so local evidence is
a plain relative path (`junit.xml`, no scheme, no fragment). With an `https://` evidence base, links are
URLs and name the junit testcase as a fragment.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
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


def check_evidence_base(base: str | None, source: str = "--evidence-base") -> str:
    """'' (files beside PRODUCT.yaml), a relative folder inside the submission, or an http(s) URL."""
    if base is None or base.strip() in ("", "."):
        return ""
    base = base.strip().rstrip("/")
    if base.startswith(("http://", "https://")):
        return base
    if "://" in base or base.startswith("/") or "#" in base or ".." in base.split("/"):
        raise ConfigError(f"{source} {base!r}: the CNCF validator resolves a non-http link as a path relative to "
                          "PRODUCT.yaml's folder; give a relative folder inside the submission (e.g. results) or "
                          "an https:// URL")
    return base


def evidence_links(base: str, testcase: str) -> tuple[str, ...]:
    """The links a requirement's evidence gets: the submission junit (the testcase as a URL fragment only) and
    e2e.log."""
    if base.startswith(("http://", "https://")):
        return f"{base}/{junit.FILENAME}#{testcase}", f"{base}/{e2e_log.FILENAME}"
    prefix = f"{base}/" if base else ""
    return f"{prefix}{junit.FILENAME}", f"{prefix}{e2e_log.FILENAME}"


def decide(summary: RequirementSummary, level: Level | None, report: Report, evidence_base: str) -> Entry:
    """The status rule for one requirement (pure): kaic's verdict -> status, evidence and a note."""
    from kaic.catalog.evidence import justification

    where, verdict = _where(report), summary.verdict
    needed = f"Evidence still needed: {evidence_needed(summary.id)}."
    must = _MUST_NOTE if level is Level.MUST else ""
    bad = _said(summary.with_status(*_BAD))
    skipped = summary.with_status(Status.SKIPPED)
    skip_note = f" Not verified by kaic here: {_said(skipped)}." if skipped else ""
    if verdict is Verdict.NOT_APPLICABLE:
        why = justification(summary.rows)
        clash = (" Note: the CNCF validator accepts only Implemented for a MUST; an N/A MUST needs the "
                 "reviewers' agreement (FAQ: conditional requirements).") if level is Level.MUST else ""
        return Entry("N/A", (), f"Not applicable: {why} (declared in the kaic profile).{clash}")
    if verdict in (Verdict.VERIFIED, Verdict.PARTIAL):
        evidence = evidence_links(evidence_base, junit.testcase_name(summary.id))
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
        seen = _said(skipped) if skipped else "no check observed the behaviour"
        return Entry(None, (), f"{where} did not observe the behaviour the test plan names, so it leaves the "
                     f"status to the vendor: {seen}.{must} {needed}")
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


OPTIONAL_METADATA = ("repoUrl",)
METADATA_KEYS = ("platformName", "platformVersion", "vendorName", "websiteUrl", "repoUrl", "documentationUrl",
                 "productLogoUrl", "description", "contactEmailAddress", CONFORMANCE_URL_KEY)


def _fill_metadata(meta: CommentedMap, version: str, metadata: Mapping[str, str]) -> None:
    """kubernetesVersion, then what the profile/flags give (platformVersion is the *product's* version) where the
    template still has a placeholder; everything else is left for the vendor."""
    meta["kubernetesVersion"] = f"v{version}"
    for key, value in metadata.items():
        if value and key in METADATA_KEYS and key in meta and _is_placeholder(meta.get(key)):
            meta[key] = _quoted(value)
    for key in OPTIONAL_METADATA:  # the validator rejects a placeholder even in an optional field
        if key in meta and _is_placeholder(meta.get(key)):
            meta[key] = _quoted("")
    if CONFORMANCE_URL_KEY not in meta:
        keys = list(meta)
        after = keys.index("contactEmailAddress") + 1 if "contactEmailAddress" in keys else len(keys)
        url = metadata.get(CONFORMANCE_URL_KEY) or conformance_url_placeholder(version)
        meta.insert(after, CONFORMANCE_URL_KEY, _quoted(url))
        if after == len(keys) and keys[-1] in meta.ca.items:  # the blank line after the block moves down too
            meta.ca.items[CONFORMANCE_URL_KEY] = meta.ca.items.pop(keys[-1])


def draft(template_text: str, source: str, report: Report, evidence_base: str = "",
          metadata: Mapping[str, str] | None = None) -> str:
    """The filled checklist as YAML text. `evidence_base` is where junit.xml and e2e.log are, relative to
    PRODUCT.yaml's folder ('' beside it, 'results') or an https:// URL; `metadata` fills template placeholders
    (keys as in the template: platformVersion, vendorName...)."""
    evidence_base = check_evidence_base(evidence_base)
    tpl = parse_template(template_text, source)
    if tpl.version != report.k8s_version:
        raise ConfigError(f"{source}: template is for Kubernetes v{tpl.version} but the report is for "
                          f"v{report.k8s_version} (pass a matching --k8s-version)")
    by_id = {s.id: s for s in report.requirements}
    for items in tpl.doc["spec"].values():
        for item in items:
            rid = str(item["id"])
            level = _template_level(item.get("level"))
            summary = by_id.get(rid)
            entry = decide(summary, level, report, evidence_base) if summary else _unknown(rid, report)
            _fill_item(item, entry)
    _fill_metadata(tpl.doc["metadata"], tpl.version, metadata or {})
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

