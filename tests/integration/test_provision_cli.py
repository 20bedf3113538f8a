"""`kaic step provision --cluster-snapshot DIR` through the CLI, with the real stores and MLflow (sqlite):
a dump made by `kaic snapshot` (FakeCluster behind the ClusterClient seam) is evaluated offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kaic.cli import main
from kaic.cluster.fake import FakeCluster
from tests.conftest import shared_path

pytestmark = pytest.mark.integration


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    node = json.loads(shared_path("fixtures", "k8s", "nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")
                      .read_text())["items"][0]
    cluster = FakeCluster([node])
    monkeypatch.setattr("kaic.cluster.connect", lambda *a, **k: cluster)
    return cluster


def test_step_reads_a_snapshot_offline(tmp_path: Path, fake: FakeCluster) -> None:
    out = tmp_path / "snap"
    assert main(["snapshot", "--out", str(out)]) == 0
    code = main(["step", "provision", "--cluster-snapshot", str(out), "--run-id", "kaic-snap-test",
                 "--mlflow-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert code == 1  # MUST probes fail on this bare cluster (no Gateway API, gang scheduler...): exit 1, not 2
    doc = json.loads((tmp_path / "kaic-home" / "objects" / "runs" / "kaic-snap-test" / "provision" /
                      "fingerprint.json").read_text())
    assert doc["allocatable"] == {"nvidia.com/gpu": 1}


def test_missing_snapshot_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["step", "provision", "--cluster-snapshot", str(tmp_path / "nope")]) == 2
    assert "--cluster-snapshot" in capsys.readouterr().err
