"""`kaic step provision` against the live dev cluster, as a workflow pod runs it (the CLI, a profile naming
the cluster's kubeconfig, active probes off), then `kaic snapshot` of the same cluster and the same step on
that folder (`--cluster-snapshot`), offline.

Asserted on facts, not on verdict labels: the fingerprint agrees with devcluster/topology.yaml (Kubernetes
version, 2x8 nvidia.com/gpu, the GPU Feature Discovery product and driver labels) and with the API server
itself; the DRA kinds are served at resource.k8s.io/v1 and the fake driver's slices are in the snapshot;
and the snapshot run gives the same rows as the live run, check for check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaic.devcluster.layout import TOPOLOGY_FILE
from kaic.results import ResultRow
from steps.provision import ACTIVE_CHECKS, READ_CHECKS
from tests.e2e import live

pytestmark = pytest.mark.e2e

DRA_KINDS = ("deviceclasses", "resourceslices", "resourceclaims", "resourceclaimtemplates")


@dataclass(frozen=True)
class Provisioned:
    live: list[ResultRow]
    snapshot: list[ResultRow]
    fingerprint: dict[str, Any]
    snapshot_dir: Path


def kaic(*args: str, home: Path) -> subprocess.Popen[str]:
    """`kaic ARGS` started with its own KAIC_HOME (and MLflow store under it); `done` waits for it."""
    env = {**os.environ, "KAIC_HOME": str(home), "KAIC_MLFLOW_URI": f"sqlite:///{home / 'mlflow.db'}"}
    return subprocess.Popen([sys.executable, "-m", "kaic.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def done(proc: subprocess.Popen[str], ok: tuple[int, ...]) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in ok, f"{proc.args!r}: exit {proc.returncode}\n{err[-3000:]}"


def staged(home: Path, run_id: str) -> list[ResultRow]:
    from kaic.stores.objects import open_store
    from kaic.stores.results_dataset import ParquetResults

    sink = ParquetResults(open_store(f"file://{home / 'objects'}", source="e2e"),
                          open_store(f"file://{home / 'results'}", source="e2e"))
    return sink.staged(run_id)


@pytest.fixture(scope="module")
def provisioned(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Provisioned:
    home = tmp_path_factory.mktemp("provision")
    profile = home / "e2e.yaml"
    profile.write_text(json.dumps({
        "name": "e2e", "platform": "kaic-devcluster",
        "kubernetes": {"kubeconfig": kubeconfig, "namespace": "kaic"},
        "probes": {"active": False},
    }))
    snap = home / "snapshot"
    first = kaic("step", "provision", "--profile", str(profile), "--run-id", "e2e-live", home=home)
    dumped = kaic("snapshot", "--kubeconfig", kubeconfig, "--out", str(snap), home=home)  # alongside: both read
    done(first, (0, 1))  # 1: some MUST requirement is not met by this cluster
    done(dumped, (0,))
    done(kaic("step", "provision", "--profile", str(profile), "--cluster-snapshot", str(snap),
              "--run-id", "e2e-snapshot", home=home), (0, 1))
    fp = json.loads((home / "objects" / "runs" / "e2e-live" / "provision" / "fingerprint.json").read_text())
    return Provisioned(staged(home, "e2e-live"), staged(home, "e2e-snapshot"), fp, snap)


def topology() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(TOPOLOGY_FILE.read_text())
    return doc


def gpu_pools() -> list[dict[str, Any]]:
    return [p for p in topology()["pools"] if "nvidia.com/gpu" in p.get("capacity", {})]


def _row(rows: list[ResultRow], check: str, metric: str | None = None) -> ResultRow:
    return next(r for r in rows if r.check_id == check and (metric is None or r.metric == metric))


def test_the_fingerprint_agrees_with_the_topology(provisioned: Provisioned, kubeconfig: str) -> None:
    from kaic.devcluster.build import K8S_VERSION

    fp, rows = provisioned.fingerprint, provisioned.live
    assert fp["k8s_version"] == K8S_VERSION  # /version, as the build's ldflags set it
    assert {r.k8s_version for r in rows} == {K8S_VERSION.lstrip("v").rsplit(".", 1)[0]}
    pools = gpu_pools()
    want = sum(int(p["count"]) * int(p["capacity"]["nvidia.com/gpu"]) for p in pools)
    assert want == 16
    assert fp["allocatable"]["nvidia.com/gpu"] == want
    assert _row(rows, "provision.accelerators", "accelerator_count").value == want
    labels = pools[0]["labels"]
    accel = [n["accelerator"] for n in fp["nodes"] if n["accelerator"]]
    assert len(accel) == sum(int(p["count"]) for p in pools)
    assert {a["product"] for a in accel} == {labels["nvidia.com/gpu.product"]}
    assert {a["driver_version"] for a in accel} == {labels["nvidia.com/cuda.driver-version.full"]}
    assert {a["count"] for a in accel} == {int(labels["nvidia.com/gpu.count"])}
    assert {r.accelerator for r in rows} == {labels["nvidia.com/gpu.product"]}
    # and with the API server itself
    # every node provision saw is the API's; the topology's pools are all of them but the Argo pod runner's
    # own node (the argo addon, docs/dev-cluster.md), which provision rightly sees too
    nodes = live.connect(kubeconfig).list("v1", "nodes")
    runner = [n for n in nodes if any(t.get("key") == "kaic.dev/pod-runner" for t in n["spec"].get("taints") or [])]
    assert len(fp["nodes"]) == len(nodes) == sum(int(p["count"]) for p in topology()["pools"]) + len(runner)
    assert len(runner) <= 1
    assert sum(int(n["status"]["allocatable"].get("nvidia.com/gpu", 0)) for n in nodes) == want


def test_dra_is_served_and_the_fake_driver_publishes_slices(provisioned: Provisioned) -> None:
    table = (provisioned.snapshot_dir / "api-resources.txt").read_text().split()
    for kind in DRA_KINDS:
        assert kind in table
        assert table[table.index(kind) + 1] == "resource.k8s.io/v1"
    driver = topology()["dra"]["driver"]
    slices = json.loads((provisioned.snapshot_dir / "resource.k8s.io_v1_resourceslices.json").read_text())["items"]
    assert {s["spec"]["driver"] for s in slices} == {driver}
    dra_nodes = sum(int(p["count"]) for p in topology()["pools"] if "dra" in p)
    assert len(slices) == dra_nodes
    classes = json.loads((provisioned.snapshot_dir / "resource.k8s.io_v1_deviceclasses.json").read_text())["items"]
    assert topology()["dra"]["deviceClass"] in {c["metadata"]["name"] for c in classes}
    dra_row = _row(provisioned.live, "provision.dra_apis")
    assert f"drivers: {driver}" in (dra_row.evidence or "")


def _comparable(rows: list[ResultRow]) -> dict[tuple[str, str | None], tuple[Any, ...]]:
    return {(r.check_id, r.metric): (r.status, r.level, r.requirement_id, r.value, r.unit, r.message)
            for r in rows if r.check_id not in ACTIVE_CHECKS}


def test_the_snapshot_gives_the_same_rows_as_the_live_cluster(provisioned: Provisioned) -> None:
    live_rows, snap_rows = _comparable(provisioned.live), _comparable(provisioned.snapshot)
    assert set(READ_CHECKS) <= {check for check, _ in live_rows}
    assert sorted(live_rows) == sorted(snap_rows)
    differ = [f"{check}: live {live_rows[(check, m)][0].value} ({live_rows[(check, m)][-1]}), snapshot "
              f"{snap_rows[(check, m)][0].value} ({snap_rows[(check, m)][-1]})"
              for check, m in sorted(live_rows, key=str) if live_rows[(check, m)] != snap_rows[(check, m)]]
    assert differ == []
    for check in ACTIVE_CHECKS:  # skipped in both, each with its own reason
        assert {r.status.value for r in provisioned.live + provisioned.snapshot if r.check_id == check} == {"skipped"}
