"""The core every step stands on: the result model, the catalog, stamping outcomes into rows, the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kaic import catalog
from kaic.cli import COMMANDS, main
from kaic.profiles import load_profile, parse_profile
from kaic.results import (
    Level,
    Outcome,
    ResultRow,
    RunContext,
    Status,
    exit_code,
    row_from_dict,
    row_to_dict,
    run_status,
)
from kaic.stepkit import stamp

pytestmark = pytest.mark.unit

CTX = RunContext("kaic-test-1", "0.1.0", datetime(2026, 11, 27, tzinfo=UTC), "eks", "prod-a", "v1.34.2", "H100")


def _row(check_id: str, status: Status, level: Level = Level.MUST) -> ResultRow:
    return ResultRow(CTX.run_id, "0.1.0", CTX.started_at, "eks", "", "", "", "x", check_id, None, level, status)


@pytest.mark.parametrize(
    ("rows", "want", "code"),
    [
        ([], Status.PASSED, 0),
        ([_row("a", Status.PASSED), _row("b", Status.SKIPPED)], Status.PASSED, 0),  # skips are not failures
        ([_row("a", Status.FAILED, Level.SHOULD), _row("b", Status.ERROR, Level.INFO)], Status.PASSED, 0),
        ([_row("a", Status.ERROR)], Status.ERROR, 1),
        ([_row("a", Status.ERROR), _row("b", Status.FAILED)], Status.FAILED, 1),
    ],
)
def test_run_status_is_derived_from_must_rows(rows: list[ResultRow], want: Status, code: int) -> None:
    assert run_status(rows) is want
    assert exit_code(rows) == code


def test_a_row_round_trips_through_its_dict_form() -> None:
    row = _row("provision.fingerprint", Status.PASSED)
    assert row_from_dict(row_to_dict(row)) == row
    assert row_from_dict({**row_to_dict(row), "value": float("nan")}).value is None


def test_the_catalog_covers_every_cncf_id_and_rejects_unknown_checks() -> None:
    covered = {c.requirement_id for c in catalog.CHECKS.values()}
    assert {r.id for r in catalog.REQUIREMENTS} <= covered
    assert len(catalog.REQUIREMENTS) == 16
    with pytest.raises(KeyError, match="not in the catalog"):
        catalog.check("train.made_up")


@pytest.mark.parametrize(
    ("k8s", "version"),
    [("", "1.35"), ("v1.34.2-eks.9", "1.34"), ("1.29.3", "1.33"), ("v1.40.0", "1.37"), ("garbage", "1.35")],
)
def test_levels_come_from_the_nearest_template_version(k8s: str, version: str) -> None:
    assert catalog.level_version(k8s) == version


def test_stamp_applies_catalog_levels_and_the_profiles_thresholds() -> None:
    profile = load_profile("local")  # holdout_accuracy >= 0.9
    rows = stamp([
        Outcome("train.holdout_accuracy", Status.PASSED, metric="holdout_accuracy", value=0.85, unit="ratio"),
        Outcome("train.holdout_accuracy", Status.PASSED, metric="holdout_accuracy", value=0.95, unit="ratio"),
        Outcome("provision.dra_apis", Status.FAILED, "no DeviceClasses"),
        # a regression row names another check's metric: the threshold is not applied to it again
        Outcome("report.regression", Status.PASSED, metric="holdout_accuracy", value=0.85, unit="ratio"),
    ], CTX, "train", profile)
    low, high, dra, regression = rows
    assert low.status is Status.FAILED
    assert "does not meet holdout_accuracy >= 0.9" in low.message
    assert low.threshold == "holdout_accuracy >= 0.9"
    assert high.status is Status.PASSED
    assert dra.requirement_id == "dra_support"
    assert dra.level is Level.MUST  # dra_support is a MUST at 1.34, the run's cluster version
    assert (dra.platform, dra.cluster, dra.accelerator) == ("eks", "prod-a", "H100")
    assert regression.status is Status.PASSED
    assert regression.threshold is None


def test_a_threshold_on_an_unknown_metric_is_refused_when_the_profile_loads() -> None:
    from kaic.errors import ConfigError

    with pytest.raises(ConfigError, match=r"profile mine\.yaml: thresholds\[0\]\.metric: .*unknown metric 'acc'"):
        parse_profile({"name": "x", "platform": "x", "thresholds": [{"metric": "acc", "op": ">", "value": 1}]},
                      "mine.yaml")


def test_every_command_in_the_table_loads_and_configures() -> None:
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0, name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--resume", "no-such-run"], "--resume: no run 'no-such-run'"),
        (["run", "--profile", "no-such-profile"], "profile 'no-such-profile': no such built-in profile"),
        (["run", "--backend", "argo"], "--backend argo needs one of --argo-server URL or --kubeconfig FILE"),
        (["step", "provision", "--object-store", "ftp://x"], "bad object-store URI 'ftp://x'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_an_unwritable_kaic_home_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("KAIC_HOME", str(blocker))
    assert main(["step", "provision"]) == 2
    assert f"KAIC_HOME {blocker}: not writable" in capsys.readouterr().err
    assert blocker.read_text() == ""  # nothing written


def test_an_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_the_step_image_flag_replaces_the_profiles_image_for_the_pods_a_step_creates() -> None:
    from kaic.errors import ConfigError
    from kaic.images import CPU_IMAGE, CUDA_IMAGE
    from kaic.profiles import load_profile
    from kaic.stepkit import with_image

    assert load_profile("eks").image == CUDA_IMAGE  # the GPU profiles' pods need the CUDA build of torch
    assert load_profile("local").image == CPU_IMAGE
    assert with_image(load_profile("local"), None).image == CPU_IMAGE
    assert with_image(load_profile("local"), "registry.example.com/kaic-cuda:1").image == \
        "registry.example.com/kaic-cuda:1"
    with pytest.raises(ConfigError, match="--image 'a b'"):
        with_image(load_profile("local"), "a b")
