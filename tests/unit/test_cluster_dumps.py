"""Five realistic cluster dumps (tests/fixtures/clusters) judged by the real provision step in snapshot mode,
stamped and summarized as the report step does; kaic's verdict per id must equal the table written first in
tests/fixtures/clusters/EXPECTED.md."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

import steps.provision as provision
from kaic import catalog
from kaic.profiles import load_profile, parse_profile
from kaic.reports.model import Report, Verdict, default_k8s_version
from kaic.results import Level, RunContext
from kaic.stepkit import StepContext, stamp
from kaic.stores.objects import open_store

pytestmark = pytest.mark.unit

DUMPS = Path(__file__).resolve().parents[1] / "fixtures" / "clusters"
WORDS = {Verdict.VERIFIED: "Implemented", Verdict.FAILED: "Not Implemented", Verdict.UNVERIFIED: "unverified",
         Verdict.NOT_APPLICABLE: "N/A", Verdict.PARTIAL: "Partially Implemented", Verdict.ERROR: "error",
         Verdict.NOT_CHECKED: "not checked"}
ACCELERATOR_MUSTS = ("secure_accelerator_access", "accelerator_metrics", "dra_support")


def expected() -> dict[str, dict[str, str]]:
    """dump -> id -> verdict, from the markdown table."""
    lines = [ln for ln in (DUMPS / "EXPECTED.md").read_text().splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    out: dict[str, dict[str, str]] = {d: {} for d in header[1:]}
    for ln in lines[1:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        for dump, verdict in zip(header[1:], cells[1:], strict=True):
            out[dump][cells[0]] = verdict
    return out


EXPECTED = expected()


def judge(dump: str, tmp_path: Path) -> Report:
    """provision (snapshot mode, the dump's profile) -> stamped rows -> the report's verdicts."""
    folder = DUMPS / dump
    data = load_profile("generic").model_dump()
    if (folder / "profile.yaml").is_file():
        data.update(yaml.safe_load((folder / "profile.yaml").read_text()))
    profile = parse_profile(data, f"{dump}/profile.yaml")
    args = argparse.Namespace(cluster_snapshot=str(folder / "snapshot"), kubeconfig=None, context=None, no_active=False)
    config = provision.make_config(args, profile)
    store = open_store(f"file://{tmp_path / 'objects'}", source="test")
    ctx = StepContext(RunContext(f"kaic-dump-{dump}", "0.1.0", datetime.now(UTC), "generic"), profile, store,
                      tmp_path, "provision")
    outcomes = provision.run(config, ctx)
    rows = stamp(outcomes, ctx.run, "provision", profile)
    return Report.build(rows, default_k8s_version(rows))


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    return {d: judge(d, tmp_path_factory.mktemp(d)) for d in EXPECTED}


def test_the_table_covers_five_dumps_and_all_16_ids() -> None:
    assert len(EXPECTED) == 5
    assert sorted(p.name for p in DUMPS.iterdir() if p.is_dir()) == sorted(EXPECTED)
    for verdicts in EXPECTED.values():
        assert set(verdicts) == {r.id for r in catalog.REQUIREMENTS}


@pytest.mark.parametrize("dump", sorted(EXPECTED))
def test_kaic_matches_the_expected_verdicts(dump: str, reports: dict[str, Report]) -> None:
    got = {s.id: WORDS[s.verdict] for s in reports[dump].requirements}
    mismatches = {rid: (want, got[rid]) for rid, want in EXPECTED[dump].items() if got[rid] != want}
    assert mismatches == {}, mismatches


@pytest.mark.parametrize("dump", sorted(EXPECTED))
def test_offline_nothing_but_dra_support_is_implemented(dump: str, reports: dict[str, Report]) -> None:
    implemented = {s.id for s in reports[dump].requirements if s.verdict is Verdict.VERIFIED}
    assert implemented <= {"dra_support"}


def test_the_zero_gpu_cluster_implements_no_accelerator_must(reports: dict[str, Report]) -> None:
    kind = reports["kind-fake-dra-1.35"]
    musts = {s.id: s.verdict for s in kind.listed if s.level is Level.MUST and s.requirement.category in
             ("accelerators", "security", "observability")}
    assert "secure_accelerator_access" in musts
    assert all(v is not Verdict.VERIFIED for rid, v in musts.items() if rid != "dra_support"), musts
    # what was seen and what is missing is said, never hidden behind a pass
    row = next(r for r in kind.rows if r.check_id == "provision.device_plugin")
    assert row.message.startswith("unverified: ")
    assert "missing: the isolation probes" in row.message


def test_stale_objects_are_named_in_the_evidence(reports: dict[str, Report]) -> None:
    rows = {r.check_id: r for r in reports["kind-fake-dra-1.35"].rows}
    assert "stale" in rows["provision.gateway_api"].message
    assert "stale, not counted" in (rows["provision.cluster_autoscaler"].evidence or "")
    assert "no collector" in rows["provision.service_monitoring"].message


def test_na_carries_the_profiles_justification(reports: dict[str, Report]) -> None:
    s = next(x for x in reports["onprem-1.33"].requirements if x.id == "cluster_autoscaling")
    assert s.verdict is Verdict.NOT_APPLICABLE
    assert "racked by hand" in s.rows[0].message
