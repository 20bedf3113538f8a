"""The provision step end to end through its `run` core: local mode on this machine, and cluster mode with
the ClusterClient seam pointed at FakeCluster (real node objects) so the real probe code runs."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import steps.provision as provision
from kaic import catalog
from kaic.cluster.fake import FakeCluster
from kaic.errors import ConfigError
from kaic.profiles import load_profile
from kaic.results import RunContext, Status
from kaic.stepkit import StepContext
from kaic.stores.objects import open_store
from tests.conftest import shared_path

pytestmark = pytest.mark.unit


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"cluster_snapshot": None, "kubeconfig": None, "context": None, "no_active": False,
                                 **kw})


def _ctx(tmp_path: Path, profile: str) -> StepContext:
    store = open_store(f"file://{tmp_path / 'objects'}", source="test")
    run = RunContext("kaic-test-run", "0.1.0", datetime.now(UTC), profile)
    return StepContext(run, load_profile(profile), store, tmp_path, "provision")


def test_local_platform_fingerprints_this_machine_and_skips_kubernetes(tmp_path: Path) -> None:
    profile = load_profile("local")
    config = provision.make_config(_args(), profile)
    assert config.mode == "local"
    ctx = _ctx(tmp_path, "local")
    out = provision.run(config, ctx)
    ids = {o.check_id for o in out}
    reqs = {catalog.check(c).requirement_id for c in ids} - {None}
    assert reqs == {r.id for r in catalog.REQUIREMENTS}  # all 16 ids have a row
    for o in out:
        if catalog.check(o.check_id).requirement_id:
            assert o.status is Status.SKIPPED
            assert o.message == "no Kubernetes cluster (local platform)"
    fp = next(o for o in out if o.check_id == "provision.fingerprint")
    assert fp.status is Status.PASSED
    count = next(o for o in out if o.metric == "accelerator_count")
    assert ctx.run.accelerator == ("cpu" if count.value == 0 else ctx.run.accelerator)
    assert ctx.run.k8s_version == ""
    doc = json.loads(ctx.store.get_bytes("runs/kaic-test-run/provision/fingerprint.json"))
    assert doc["kind"] == "local"
    assert doc["host"]["cpu_count"] >= 1
    context = json.loads(ctx.store.get_bytes("runs/kaic-test-run/context.json"))
    assert context["accelerator"] == ctx.run.accelerator


def test_cluster_mode_runs_read_and_active_probes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = json.loads(shared_path("fixtures", "k8s", "nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")
                      .read_text())["items"][0]
    fake = FakeCluster([node])
    monkeypatch.setattr("kaic.cluster.connect", lambda *a, **k: fake)
    profile = load_profile("generic")
    config = provision.make_config(_args(kubeconfig="/dev/null"), profile)
    assert (config.mode, config.active, config.in_cluster) == ("cluster", True, False)
    ctx = _ctx(tmp_path, "generic")
    out = {(o.check_id, o.metric): o for o in provision.run(config, ctx)}
    assert out[("provision.accelerator_pod", "pod_time_to_running_s")].status is Status.PASSED
    assert out[("provision.no_request_no_device", None)].status is Status.PASSED
    assert out[("provision.device_isolation", None)].status is Status.SKIPPED  # one GPU on this node
    assert out[("provision.gang_admission", None)].status is Status.SKIPPED  # generic: gang probe off
    assert out[("provision.vgpu", None)].message.startswith("unverified: ")  # a vGPU label: presence only
    assert (ctx.run.k8s_version, ctx.run.accelerator) == ("1.35", "NVIDIA-A16-4Q")
    doc = json.loads(ctx.store.get_bytes("runs/kaic-test-run/provision/fingerprint.json"))
    assert doc["allocatable"] == {"nvidia.com/gpu": 1}
    assert doc["nodes"][0]["allocatable"] == {"nvidia.com/gpu": 1}
    assert doc["provider"] == "rke2"
    assert fake.list("v1", "pods") == []


def test_bad_snapshot_path_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--cluster-snapshot .*missing: not a directory"):
        provision.make_config(_args(cluster_snapshot=str(tmp_path / "missing")), load_profile("local"))


def test_gang_probe_needs_a_queue(tmp_path: Path) -> None:
    data = load_profile("eks").model_dump()
    data["probes"]["gang_queue"] = None
    from kaic.profiles import parse_profile

    with pytest.raises(ConfigError, match="gang_queue"):
        provision.make_config(_args(), parse_profile(data, "test"))
