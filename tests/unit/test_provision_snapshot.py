"""`kaic snapshot` round trip: a dump of a cluster (FakeCluster behind the ClusterClient seam, real node
objects) evaluates to the same READ probe results offline as online; secrets of workloads are redacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kaic.cli import main
from kaic.cluster.fake import FakeCluster
from kaic.cluster.snapshot import SnapshotCluster
from steps.provision.read_probes import evaluate
from steps.provision.view import gather
from tests.conftest import shared_path

pytestmark = pytest.mark.unit

DCGM = {"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "nvidia-dcgm-exporter", "namespace": "gpu-operator",
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"token\": \"s3cr3t\"}"}},
        "spec": {"selector": {"matchLabels": {"app": "dcgm"}}, "template": {
            "metadata": {"labels": {"app": "dcgm"}},
            "spec": {"containers": [{"name": "e", "image": "dcgm-exporter",
                                     "env": [{"name": "TOKEN", "value": "s3cr3t"}]}]}}},
        "status": {"numberReady": 1, "desiredNumberScheduled": 1}}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    node = json.loads(shared_path("fixtures", "k8s", "nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")
                      .read_text())["items"][0]
    cluster = FakeCluster([node], objects=[DCGM])
    monkeypatch.setattr("kaic.cluster.connect", lambda *a, **k: cluster)
    return cluster


def test_snapshot_round_trip(tmp_path: Path, fake: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "snap"
    assert main(["snapshot", "--out", str(out)]) == 0
    assert (out / "version.json").is_file()
    assert (out / "api-resources.txt").is_file()
    assert "s3cr3t" not in "".join(p.read_text() for p in out.iterdir())
    online = evaluate(gather(fake))
    offline = evaluate(gather(SnapshotCluster(out), "snapshot"))
    assert [(o.check_id, o.status, o.message) for o in online] == [(o.check_id, o.status, o.message) for o in offline]
    exporter = next(o for o in offline if o.check_id == "provision.accelerator_exporter")
    assert exporter.message.startswith("unverified: an accelerator metrics exporter is Running; missing: a scrape")
    assert "nvidia-dcgm-exporter ready 1/1" in (exporter.evidence or "")
    assert "kaic step provision --cluster-snapshot" in capsys.readouterr().out


def test_out_must_be_new_or_empty(tmp_path: Path, fake: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep").write_text("")
    assert main(["snapshot", "--out", str(tmp_path / "x")]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
