"""The evidence rule (kaic.catalog.evidence): what a requirement's rows may claim, and N/A from the profile."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kaic import catalog
from kaic.catalog import evidence
from kaic.catalog.evidence import Verdict
from kaic.errors import ConfigError
from kaic.profiles import load_profile, parse_profile
from kaic.results import ResultRow, Status
from steps.provision import not_applicable
from tests.unit.test_reports import sample_rows

pytestmark = pytest.mark.unit


def _row(check_id: str, status: Status, message: str = "") -> ResultRow:
    spec = catalog.check(check_id)
    return replace(sample_rows()[0], check_id=check_id, step=spec.step, requirement_id=spec.requirement_id,
                   status=status, message=message)


def _verdict(*rows: ResultRow) -> Verdict:
    return evidence.verdict(rows, catalog.CHECKS)


def test_only_behaviour_verifies_and_only_dra_support_from_a_read() -> None:
    read_only = {c.requirement_id for c in catalog.CHECKS.values()
                 if c.probe is catalog.Probe.READ and c.requirement_id
                 and evidence.proves(c, Status.PASSED)}
    assert read_only == {"dra_support"}
    assert _verdict(_row("provision.gang_scheduler", Status.PASSED)) is Verdict.UNVERIFIED
    assert _verdict(_row("provision.gang_admission", Status.PASSED)) is Verdict.VERIFIED
    assert _verdict(_row("provision.disaggregated_inference", Status.PASSED)) is Verdict.UNVERIFIED  # ATTEST


def test_presence_is_an_unverified_skip_that_says_what_is_missing() -> None:
    o = evidence.presence("provision.gang_scheduler", "Kueue Running", "a gang admitted together", "kueue 1/1")
    assert o.status is Status.SKIPPED
    assert o.message == "unverified: Kueue Running; missing: a gang admitted together"
    assert o.evidence == "kueue 1/1"


def test_failure_wins_and_a_proven_part_makes_it_partial() -> None:
    failed = _row("provision.device_isolation", Status.FAILED, "pods share a device")
    assert _verdict(failed, _row("provision.device_plugin", Status.SKIPPED, "unverified: x; missing: y")) \
        is Verdict.FAILED
    assert _verdict(failed, _row("provision.accelerator_pod", Status.PASSED)) is Verdict.PARTIAL
    assert _verdict(_row("provision.accelerator_pod", Status.ERROR)) is Verdict.ERROR


def test_na_rows_come_from_the_profile_for_conditional_ids_only() -> None:
    outcomes = [evidence.presence("provision.cluster_autoscaler", "labels", "N+1"),
                evidence.presence("provision.gang_scheduler", "Kueue", "gang")]
    out = not_applicable(outcomes, {"cluster_autoscaling": "fixed-size on-prem cluster, racked by hand"})
    assert [o.check_id for o in out] == ["provision.cluster_autoscaler", "provision.gang_scheduler"]
    na = _row("provision.cluster_autoscaler", Status.SKIPPED, out[0].message)
    assert _verdict(na) is Verdict.NOT_APPLICABLE
    assert evidence.justification([na]) == "fixed-size on-prem cluster, racked by hand"


@pytest.mark.parametrize(("rid", "why", "expect"), [
    ("gang_scheduling", "a long enough justification here", "not conditional"),
    ("cluster_autoscaling", "fixed", "needs a justification"),
    ("cluster_autoscaling", "we don't support autoscaling on this product", "not a justification"),
])
def test_a_profile_with_a_bad_na_is_a_one_line_config_error(rid: str, why: str, expect: str) -> None:
    data = load_profile("generic").model_dump()
    data["not_applicable"] = {rid: why}
    with pytest.raises(ConfigError) as info:
        parse_profile(data, "my.yaml")
    assert expect in str(info.value)
    assert "\n" not in str(info.value)
