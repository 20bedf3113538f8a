"""PRODUCT.yaml drafts: every official template 1.33-1.37 filled from a realistic run, and the status rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kaic import catalog
from kaic.errors import ConfigError
from kaic.reports import product
from kaic.reports.model import Report
from kaic.results import Status
from tests.conftest import shared_path
from tests.unit.test_reports import sample_rows

pytestmark = pytest.mark.unit

STATUSES = {"", "Implemented", "Not Implemented", "Partially Implemented", "N/A"}


def _items(doc: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {item["id"]: item for items in doc["spec"].values() for item in items}


def _report(version: str) -> Report:
    return Report.build(sample_rows(k8s_version=f"v{version}.3"), version)


def _check_draft(template_text: str, draft_text: str, report: Report, base: str) -> dict:  # type: ignore[type-arg]
    template, draft = yaml.safe_load(template_text), yaml.safe_load(draft_text)
    tpl_items, items = _items(template), _items(draft)
    assert list(items) == list(tpl_items)  # every id, same order
    for rid, item in items.items():
        assert item["description"] == tpl_items[rid]["description"]
        assert item["level"] == tpl_items[rid]["level"]
        assert item["status"] in STATUSES
        assert item["notes"]  # kaic always says what it saw, or what is still needed
        rows = [r for r in report.rows if r.requirement_id == rid]
        if item["status"] == "Implemented":
            assert any(r.status is Status.PASSED for r in rows), rid
            assert not any(r.status in (Status.FAILED, Status.ERROR) for r in rows), rid
            # local evidence: plain paths relative to PRODUCT.yaml (the validator joins and stats them)
            assert item["evidence"] == [f"{base}junit.xml", f"{base}e2e.log"], rid
        assert item["status"] != "N/A"  # no N/A without the profile's justification
    meta = draft["metadata"]
    assert meta["kubernetesVersion"] == f"v{report.k8s_version}"
    assert meta["k8sConformanceUrl"].startswith("[URL to k8s-conformance submission")
    # the product's version, never Kubernetes' (the old draft wrote the cluster version: a bug)
    assert meta["platformVersion"] == "[Platform Version]"
    assert meta["vendorName"] == "[Vendor Name]"  # vendor fields stay placeholders
    return items


@pytest.mark.parametrize("version", catalog.K8S_VERSIONS)
def test_draft_from_each_official_template(version: str, tmp_path: Path) -> None:
    path = shared_path("reference", "cncf-ai-conformance", "templates", f"AIConformance-{version}.yaml")
    report = _report(version)
    text, source = product.read_template(path)
    draft = product.draft(text, source, report)
    items = _check_draft(text, draft, report, "")
    assert items["ai_service_metrics"]["status"] == "Implemented"  # the platform's Prometheus counted requests
    assert items["gang_scheduling"]["status"] == ""  # Kueue Running is presence: left for the vendor
    assert "did not observe the behaviour" in items["gang_scheduling"]["notes"]
    assert items["ai_inference"]["status"] == "Not Implemented"
    assert items["secure_accelerator_access"]["status"] == "Partially Implemented"
    assert items["accelerator_metrics"]["status"] == ""  # errored: left for the vendor, with a note
    assert "errored" in items["accelerator_metrics"]["notes"]
    assert items["robust_controller"]["status"] == ""  # skipped only
    assert "Evidence still needed" in items["robust_controller"]["notes"]
    assert "no AI operator CRDs" in items["robust_controller"]["notes"]


@pytest.mark.parametrize("version", catalog.K8S_VERSIONS)
def test_draft_from_packaged_template_keeps_comments_and_layout(version: str, tmp_path: Path) -> None:
    text, source = product.packaged_template(version)
    report = _report(version)
    draft = product.draft(text, source, report, "results")
    _check_draft(text, draft, report, "results/")
    assert "# Participants should fill in the 'status', 'evidence', and 'notes' fields" in draft
    if version in ("1.33", "1.34", "1.35"):  # the later templates dropped these comments
        assert "# Must provide a justification when status is N/A" in draft
    assert '"[Contact Email Address]"\n  k8sConformanceUrl: "[URL to k8s-conformance' in draft
    assert '/product-name]"\n\nspec:\n' in draft  # the blank line before spec stays where it was
    assert draft.startswith("# Draft written by kaic")
    # untouched lines are byte for byte the template's (descriptions are never re-wrapped)
    kept = [ln for ln in text.splitlines() if "description:" in ln]
    assert all(ln in draft.splitlines() for ln in kept)


def test_newer_ids_without_rows_are_left_with_a_note(tmp_path: Path) -> None:
    text, source = product.packaged_template("1.37")
    items = _items(yaml.safe_load(product.draft(text, source, _report("1.37"))))
    sandbox = items["workload_sandboxing"]
    assert sandbox["status"] == ""
    assert sandbox["evidence"] == []
    assert "provision.sandbox_runtimes" in sandbox["notes"]
    assert "gVisor or Kata" in sandbox["notes"]


def test_vendor_filled_template_keeps_vendor_evidence_but_not_a_contradicted_claim(tmp_path: Path) -> None:
    path = shared_path("reference", "cncf-ai-conformance", "submissions", "v1.35-eks.PRODUCT.yaml")
    text, source = product.read_template(path)
    items = _items(yaml.safe_load(product.draft(text, source, _report("1.35"), "https://example.org/kaic/run-1")))
    vendor = _items(yaml.safe_load(text))
    # kaic saw the Gateway API check fail: the vendor's "Implemented" does not survive in the draft
    assert vendor["ai_inference"]["status"] == "Implemented"
    assert items["ai_inference"]["status"] == "Not Implemented"
    assert items["ai_inference"]["evidence"] == vendor["ai_inference"]["evidence"]
    # nothing observed: the vendor's status and evidence stay, kaic's note is appended
    assert items["robust_controller"]["status"] == vendor["robust_controller"]["status"]
    assert items["robust_controller"]["evidence"] == vendor["robust_controller"]["evidence"]
    assert " | kaic: " in items["robust_controller"]["notes"] or vendor["robust_controller"]["notes"] == ""
    # verified: vendor evidence first, then kaic's junit links
    assert items["dra_support"]["evidence"][: len(vendor["dra_support"]["evidence"])] == \
        vendor["dra_support"]["evidence"]
    assert "https://example.org/kaic/run-1/junit.xml#dra_support" in items["dra_support"]["evidence"]


@pytest.mark.parametrize(("text", "expect"), [
    ("metadata: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "not an AI conformance checklist"),
    ("metadata: {kubernetesVersion: v1.99}\nspec: {}\n", "unknown Kubernetes version 'v1.99'"),
    ("metadata: {kubernetesVersion: v1.35}\nspec: {networking: [{id: x}]}\n", "spec.networking[0] lacks"),
])
def test_invalid_template_is_a_one_line_config_error(text: str, expect: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        product.draft(text, "--template bad.yaml", _report("1.35"))
    assert expect in str(info.value)
    assert str(info.value).startswith("--template bad.yaml")
    assert "\n" not in str(info.value)


def test_template_for_another_version_is_refused(tmp_path: Path) -> None:
    text, source = product.packaged_template("1.34")
    with pytest.raises(ConfigError, match=r"template is for Kubernetes v1\.34 but the report is for v1\.35"):
        product.draft(text, source, _report("1.35"))


def test_evidence_base_for_a_submission_folder() -> None:
    text, source = product.packaged_template("1.35")
    items = _items(yaml.safe_load(product.draft(text, source, _report("1.35"), "results/")))
    assert items["ai_service_metrics"]["evidence"] == ["results/junit.xml", "results/e2e.log"]
    items = _items(yaml.safe_load(product.draft(text, source, _report("1.35"), "https://ci.example.org/run-7")))
    assert items["ai_service_metrics"]["evidence"] == [
        "https://ci.example.org/run-7/junit.xml#ai_service_metrics", "https://ci.example.org/run-7/e2e.log"]


@pytest.mark.parametrize("base", ["file://results", "/abs/results", "results#x", "../elsewhere"])
def test_an_evidence_base_the_validator_cannot_resolve_is_refused(base: str) -> None:
    text, source = product.packaged_template("1.35")
    with pytest.raises(ConfigError, match="--evidence-base"):
        product.draft(text, source, _report("1.35"), base)


def test_metadata_fills_placeholders_with_the_products_version() -> None:
    text, source = product.packaged_template("1.35")
    meta = yaml.safe_load(product.draft(text, source, _report("1.35"), metadata={
        "platformVersion": "2.4.1", "vendorName": "Example Corp"}))["metadata"]
    assert meta["platformVersion"] == "2.4.1"
    assert meta["vendorName"] == "Example Corp"


def test_unreadable_template_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--template .*missing.yaml: cannot read"):
        product.read_template(tmp_path / "missing.yaml")
