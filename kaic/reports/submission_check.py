"""`kaic report --check-submission DIR`: the CNCF validator's rules on a PRODUCT.yaml, offline.

The rules are those of cncf/k8s-ai-conformance `scripts/validate.go` (read, not run): it reads only
PRODUCT.yaml and compares it with the official template of the version in its path (`v1.35/<product>/`).
Errors (what makes the validator fail):
- metadata: every required field present, a string, not empty, not a `[placeholder]`; `k8sConformanceUrl`
  shaped `https://github.com/cncf/k8s-conformance/tree/(master|main)/v1.xx/<product>`;
- spec: every category and requirement id of the template present; a SHOULD with empty status and no
  evidence is skipped; otherwise status is one of the four values, a MUST is exactly `Implemented`, `N/A`
  has notes; an evidence link that is not http(s) is `filepath.Join(<PRODUCT.yaml folder>, link)` and
  must exist.
What it cannot check offline is listed, never passed: http(s) links answering < 400 and the vendor's
CNCF membership (the CNCF landscape).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kaic.catalog import K8S_VERSIONS
from kaic.errors import ConfigError
from kaic.reports.product import packaged_template

VALID_STATUSES = ("Implemented", "Not Implemented", "Partially Implemented", "N/A")
METADATA_FIELDS: dict[str, bool] = {  # field -> required (validate.go metadataFields)
    "kubernetesVersion": True, "platformName": True, "platformVersion": True, "vendorName": True,
    "websiteUrl": True, "repoUrl": False, "documentationUrl": True, "productLogoUrl": True, "description": True,
    "contactEmailAddress": True, "k8sConformanceUrl": True,
}
K8S_CONFORMANCE_URL = re.compile(r"^https://github\.com/cncf/k8s-conformance/tree/(master|main)/v\d+\.\d+/[^/]+/?$")
_PATH_VERSION = re.compile(r"(?:^|/)(v\d+\.\d+)/")


@dataclass
class CheckResult:
    path: Path
    version: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    offline_unchecked: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.path}: CNCF AI Conformance v{self.version}: {len(self.errors)} error(s)"]
        out += [f"  error: {e}" for e in self.errors]
        out += [f"  warning: {w}" for w in self.warnings]
        if self.offline_unchecked:
            out.append("  not checked offline (the validator fetches these): "
                       + "; ".join(self.offline_unchecked))
        return out


def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def _load(path: Path, source: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{source} {path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{source} {path}: not a PRODUCT.yaml (expected a mapping)")
    return doc


def _version(path: Path, doc: dict[str, Any], result_warnings: list[str]) -> str:
    m = _PATH_VERSION.search(path.resolve().as_posix())
    if m:
        return m.group(1)[1:]
    meta = doc.get("metadata") or {}
    raw = str(meta.get("kubernetesVersion", "")).lstrip("v") if isinstance(meta, dict) else ""
    short = ".".join(raw.split(".")[:2])
    if short not in K8S_VERSIONS:
        raise ConfigError(f"--check-submission {path}: no v1.xx folder in its path and metadata.kubernetesVersion "
                          f"{raw!r} is not a known version ({', '.join(K8S_VERSIONS)})")
    result_warnings.append(f"the validator takes the version from the path; place the file at "
                           f"v{short}/<product>/PRODUCT.yaml in cncf/k8s-ai-conformance (checked as v{short}, "
                           "from metadata.kubernetesVersion)")
    return short


def _check_metadata(meta: Any, r: CheckResult) -> None:
    if not isinstance(meta, dict):
        r.errors.append("Missing 'metadata' section")
        return
    for name, required in METADATA_FIELDS.items():
        key = name if name in meta else _snake(name)
        val = meta.get(key)
        if val is None:
            if required:
                r.errors.append(f"Missing metadata field: {name} (or {_snake(name)})")
            continue
        if not isinstance(val, str):
            r.errors.append(f"Metadata field {name} is not a string")
            continue
        if val == "":
            if required:
                r.errors.append(f"Metadata field {name} is empty")
        elif val.startswith("[") and val.endswith("]"):
            r.errors.append(f"Metadata field {name} has placeholder value: {val}")
        elif name == "k8sConformanceUrl":
            if not K8S_CONFORMANCE_URL.match(val):
                r.errors.append(f"Invalid k8sConformanceUrl format: {val}")
            else:
                r.offline_unchecked.append(f"k8sConformanceUrl {val} reachable")
        elif val.startswith("http"):
            r.offline_unchecked.append(f"metadata {name} {val} reachable")
    vendor = str(meta.get("vendorName") or meta.get("vendor_name") or "").strip()
    if vendor:
        r.offline_unchecked.append(f"vendorName {vendor!r} is a CNCF member (landscape.cncf.io/members)")


def _check_spec(spec: Any, schema: dict[str, Any], folder: Path, r: CheckResult) -> None:
    if not isinstance(spec, dict):
        r.errors.append("Missing 'spec' section")
        return
    for category, schema_reqs in (schema.get("spec") or {}).items():
        reqs = spec.get(category)
        if not isinstance(reqs, list):
            r.errors.append(f"Missing spec category: {category}")
            continue
        by_id = {str(x.get("id")): x for x in reqs if isinstance(x, dict)}
        for s in schema_reqs:
            rid, level = str(s["id"]), str(s["level"])
            item = by_id.get(rid)
            if item is None:
                r.errors.append(f"Missing requirement '{rid}' in category '{category}'")
                continue
            status = str(item.get("status") or "")
            evidence = [str(e) for e in item.get("evidence") or [] if e is not None]
            if level == "SHOULD" and status == "" and not evidence:
                continue
            if status not in VALID_STATUSES:
                r.errors.append(f"Invalid status '{status}' for '{rid}'. Must be one of {', '.join(VALID_STATUSES)}")
            if level == "MUST" and status != "Implemented":
                r.errors.append(f"Requirement '{rid}' is MUST level but status is '{status}'. "
                                "It must be 'Implemented'.")
            if status == "N/A" and not str(item.get("notes") or ""):
                r.errors.append(f"Notes required for '{rid}' when status is N/A")
            for link in evidence:
                if not link:
                    continue
                if link.startswith(("http://", "https://")):
                    r.offline_unchecked.append(f"evidence of {rid}: {link} answers < 400")
                elif not (folder / link).exists():  # filepath.Join(productDir, link), then os.Stat
                    r.errors.append(f"Invalid evidence file for '{rid}': {link} (not found at {folder / link})")


def check(path: Path) -> CheckResult:
    """The validator's checks on one PRODUCT.yaml (a file, or a folder holding PRODUCT.yaml)."""
    if path.is_dir():
        path = path / "PRODUCT.yaml"
    if not path.is_file():
        raise ConfigError(f"--check-submission {path}: no such file")
    doc = _load(path, "--check-submission")
    warnings: list[str] = []
    version = _version(path, doc, warnings)
    r = CheckResult(path, version, warnings=warnings)
    text, _ = packaged_template(version)
    schema = yaml.safe_load(text)
    _check_metadata(doc.get("metadata"), r)
    _check_spec(doc.get("spec"), schema, path.parent, r)
    return r
