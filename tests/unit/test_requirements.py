"""`kaic requirements`, and the requirement catalog checked against every official CNCF template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kaic import catalog
from kaic.cli import main
from kaic.reports import product
from tests.conftest import shared_path

pytestmark = pytest.mark.unit


def _template_facts(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    doc = yaml.safe_load(text)
    version = str(doc["metadata"]["kubernetesVersion"]).lstrip("v")
    return version, [(item["id"], category, item["level"]) for category, items in doc["spec"].items()
                     for item in items]


def _catalog_facts(version: str) -> list[tuple[str, str, str]]:
    return [(r.id, r.category, lv.value) for r, lv in catalog.for_version(version)]


@pytest.mark.parametrize("version", catalog.K8S_VERSIONS)
def test_catalog_matches_the_official_template(version: str) -> None:
    path = shared_path("reference", "cncf-ai-conformance", "templates", f"AIConformance-{version}.yaml")
    tpl_version, facts = _template_facts(path.read_text())
    assert tpl_version == version
    assert _catalog_facts(version) == facts  # ids, categories, levels, and template order


@pytest.mark.parametrize("version", catalog.K8S_VERSIONS)
def test_packaged_templates_are_byte_copies_of_the_official_ones(version: str) -> None:
    official = shared_path("reference", "cncf-ai-conformance", "templates", f"AIConformance-{version}.yaml")
    text, _ = product.packaged_template(version)
    assert text == official.read_text()


@pytest.mark.parametrize("version", catalog.K8S_VERSIONS)
def test_catalog_matches_the_packaged_template(version: str) -> None:
    """Runs without ../shared too: the packaged copies are the same files."""
    text, _ = product.packaged_template(version)
    assert _template_facts(text) == (version, _catalog_facts(version))


COUNTS = [("1.33", 9), ("1.34", 9), ("1.35", 12), ("1.36", 14), ("1.37", 15)]


@pytest.mark.parametrize(("version", "count"), COUNTS)
def test_requirements_json_for_one_version(
    version: str, count: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["requirements", "--k8s-version", version, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["k8s_versions"] == [version]
    assert len(doc["requirements"]) == count
    text, _ = product.packaged_template(version)
    assert [(r["id"], r["category"], r["level"]) for r in doc["requirements"]] == _template_facts(text)[1]
    gang = next(r for r in doc["requirements"] if r["id"] == "gang_scheduling")
    assert {(c["check_id"], c["probe"]) for c in gang["checks"]} == {
        (c.check_id, c.probe.value) for c in catalog.checks_for("gang_scheduling")}
    own = {c["check_id"]: c for c in doc["kaic_checks"]}
    assert set(own) == {c.check_id for c in catalog.CHECKS.values() if c.requirement_id is None}
    assert own["train.holdout_accuracy"]["level"] == "MUST"
    assert own["train.holdout_accuracy"]["metrics"] == [{"name": "holdout_accuracy", "unit": "ratio",
                                                         "direction": "higher"}]


def test_requirements_matrix_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["requirements"]) == 0
    out = capsys.readouterr().out
    assert "16 requirements" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("dra_support "))
    assert line.split()[2:7] == ["SHOULD", "MUST", "MUST", "-", "-"]
    assert "provision.dra_apis (read)" in line
    assert "kaic's own checks" in out
    assert "serve_p99_ms@ [ms]" in out


@pytest.mark.parametrize("bad", ["1.99", "abc", ""])
def test_unknown_version_is_exit_2_with_one_line(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["requirements", "--k8s-version", bad]) == 2
    err = capsys.readouterr()
    assert err.out == ""
    assert err.err.count("\n") == 1
    assert repr(bad) in err.err
    assert "--k8s-version" in err.err


def test_shipped_template_files_are_declared_as_package_data() -> None:
    root = Path(__file__).resolve().parents[2]
    assert '"reports/templates/*.yaml"' in (root / "pyproject.toml").read_text()
    assert sorted(p.name for p in (root / "kaic" / "reports" / "templates").glob("*.yaml")) == [
        f"AIConformance-{v}.yaml" for v in catalog.K8S_VERSIONS]
