"""`kaic report --check-submission`: the CNCF validator's rules (scripts/validate.go) on real drafts for every
template 1.33-1.37, and on drafts that break each rule."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from kaic import catalog
from kaic.catalog import Probe
from kaic.cli import main
from kaic.profiles import load_profile
from kaic.reports import submission_check
from kaic.reports.writer import write_reports
from kaic.results import Outcome, ResultRow, RunContext, Status
from kaic.stepkit import stamp
from tests.conftest import shared_path
from tests.unit.test_reports import T0, sample_rows

pytestmark = pytest.mark.unit

METADATA = {
    "platformName": "Example AI Platform", "platformVersion": "2.4.1", "vendorName": "Example Corp",
    "websiteUrl": "https://example.org", "documentationUrl": "https://example.org/docs",
    "productLogoUrl": "https://example.org/logo.svg", "description": "An example platform.",
    "contactEmailAddress": "conformance@example.org",
    "k8sConformanceUrl": "https://github.com/cncf/k8s-conformance/tree/master/v1.35/example",
}


def verified_rows(version: str) -> list[ResultRow]:
    """A run in which every CNCF check that can prove its requirement passed (ACTIVE probes, dra_support's
    READ probe), as the steps would stamp it."""
    ctx = RunContext("kaic-20260301-020000-ok0001", "0.1.0", T0, "eks", "gpu-1", f"v{version}.2", "H100")
    by_step: dict[str, list[Outcome]] = defaultdict(list)
    for spec in catalog.CHECKS.values():
        if spec.requirement_id and (spec.probe is Probe.ACTIVE or spec.check_id == "provision.dra_apis"):
            by_step[spec.step].append(Outcome(spec.check_id, Status.PASSED, "behaviour observed"))
    profile = load_profile("eks")
    return [r for step, outs in by_step.items() for r in stamp(outs, ctx, step, profile)]


def write_submission(root: Path, version: str, rows: list[ResultRow], metadata: dict[str, str]) -> Path:
    folder = root / f"v{version}" / "example"
    write_reports(rows, folder, ["junit", "e2e", "product"], version, metadata=metadata)
    return folder


@pytest.mark.parametrize("version", catalog.K8S_VERSIONS)
def test_every_template_draft_passes_the_validator_rules(version: str, tmp_path: Path) -> None:
    folder = write_submission(tmp_path, version, verified_rows(version), METADATA)
    result = submission_check.check(folder)
    assert result.version == version
    assert result.errors == []
    doc = yaml.safe_load((folder / "PRODUCT.yaml").read_text())
    musts = [i for items in doc["spec"].values() for i in items if i["level"] == "MUST"]
    assert musts
    assert all(i["status"] == "Implemented" and i["evidence"] == ["junit.xml", "e2e.log"] for i in musts)
    assert doc["metadata"]["platformVersion"] == "2.4.1"
    # what only the online validator can check is listed, not passed
    unchecked = " ".join(result.offline_unchecked)
    assert "CNCF member" in unchecked
    assert "k8sConformanceUrl" in unchecked


def test_a_run_that_verified_nothing_fails_with_the_validators_errors(tmp_path: Path) -> None:
    folder = write_submission(tmp_path, "1.35", sample_rows("v1.35.2"), {})
    errors = submission_check.check(folder).errors
    assert "Requirement 'gang_scheduling' is MUST level but status is ''. It must be 'Implemented'." in errors
    assert "Requirement 'ai_inference' is MUST level but status is 'Not Implemented'. It must be 'Implemented'." \
        in errors
    assert "Metadata field platformVersion has placeholder value: [Platform Version]" in errors
    assert not any("'driver_runtime_management'" in e for e in errors)  # a SHOULD left empty is skipped
    assert not any("evidence file" in e for e in errors)  # kaic's own links exist


def test_links_the_validator_cannot_resolve_are_errors(tmp_path: Path) -> None:
    folder = write_submission(tmp_path, "1.34", verified_rows("1.34"), METADATA)
    path = folder / "PRODUCT.yaml"
    doc = yaml.safe_load(path.read_text())
    item = doc["spec"]["security"][0]
    item["evidence"] = ["file://results/junit.xml#TestSecureAcceleratorAccess", "junit.xml#frag", "junit.xml"]
    doc["spec"]["accelerators"][0].update(status="N/A", notes="")
    doc["metadata"]["k8sConformanceUrl"] = "https://example.org/not-the-repo"
    path.write_text(yaml.safe_dump(doc))
    errors = submission_check.check(folder).errors
    assert sum("Invalid evidence file for 'secure_accelerator_access'" in e for e in errors) == 2
    assert "Notes required for 'dra_support' when status is N/A" in errors
    assert any(e.startswith("Invalid k8sConformanceUrl format") for e in errors)


def test_a_file_outside_a_version_folder_is_checked_from_its_metadata(tmp_path: Path) -> None:
    write_reports(verified_rows("1.36"), tmp_path / "out", ["junit", "e2e", "product"], "1.36", metadata=METADATA)
    result = submission_check.check(tmp_path / "out" / "PRODUCT.yaml")
    assert result.version == "1.36"
    assert result.errors == []
    assert any("takes the version from the path" in w for w in result.warnings)


def test_the_cli_checks_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_submission(tmp_path, "1.37", verified_rows("1.37"), METADATA)
    assert main(["report", "--check-submission", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "v1.37: 0 error(s)" in out
    assert "not checked offline" in out
    (folder / "e2e.log").unlink()
    assert main(["report", "--check-submission", str(folder)]) == 1
    assert "Invalid evidence file" in capsys.readouterr().out
    assert main(["report", "--check-submission", str(tmp_path / "nope")]) == 2


def test_real_vendor_submissions_keep_their_must_statuses() -> None:
    path = shared_path("reference", "cncf-ai-conformance", "submissions", "v1.35-eks.PRODUCT.yaml")
    errors = submission_check.check(path).errors
    assert not any("MUST level" in e for e in errors)
