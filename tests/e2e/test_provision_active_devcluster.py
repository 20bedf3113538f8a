"""provision's ACTIVE probes against a real control plane (the dev cluster: kube-apiserver, kube-scheduler,
Kueue with its webhooks, the fake DRA driver's slices; kwok nodes with no container runtime).

What the control plane shows is asserted as passed (scheduling, Kueue's all-or-nothing admission, DRA
allocation, a webhook refusing); what it cannot show (a container's view of its devices: kwok runs no
container) must come out `unverified`, never passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kaic.cluster import ClusterClient, run_selector, wait_until
from kaic.devcluster.topology import Topology, node_object
from kaic.results import Status
from steps.provision.active import ActiveProbes, PodSettings, probe_pod
from steps.provision.active_autoscaling import NodeAutoscaling
from steps.provision.active_operator import OperatorWebhook
from steps.provision.active_platform import DraAllocation, DraIsolation, KueueGang, run_suffix

pytestmark = pytest.mark.e2e

NAMESPACE, QUEUE = "kaic-queue", "gpu"  # the dev cluster's Kueue LocalQueue (docs/dev-cluster.md)
GPU_POOL = {"kaic.dev/pool": "gpu"}
TOPOLOGY = Path(__file__).resolve().parents[2] / "devcluster" / "topology.yaml"
# The dev cluster's kwok nodes keep the node.kubernetes.io/not-ready taint that admission puts on a new Node (it
# runs no node-lifecycle controller to lift it); the probes tolerate it as a profile would a GPU pool's taint.
NOT_READY = ({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"},)


def _settings(run: str, **kw: object) -> PodSettings:
    # kwok answers a log request with an error at once: 5 s of that says "no container" as surely as 30
    values: dict[str, object] = {"node_selector": GPU_POOL, "tolerations": NOT_READY, "timeout_s": 90.0,
                                 "gang_observe_s": 20.0, "gang_queue": QUEUE, "output_wait_s": 5.0, **kw}
    return PodSettings(NAMESPACE, "busybox:1.36", run, "nvidia.com/gpu", **values)  # type: ignore[arg-type]


def _left(cluster: ClusterClient, run: str) -> list[str]:
    sel = run_selector(run)
    return [f"{plural}/{(o.get('metadata') or {}).get('name')}" for gv, plural in (
        ("v1", "pods"), ("batch/v1", "jobs"), ("resource.k8s.io/v1", "resourceclaims"))
        for o in cluster.list(gv, plural, NAMESPACE, sel)]


def test_accelerator_pods_are_placed_by_the_real_scheduler_but_their_devices_stay_unverified(
        cluster: ClusterClient) -> None:
    run = "kaic-e2e-sched-0001"
    probes = ActiveProbes(cluster, _settings(run))
    placed = probes.accelerator_pod()
    assert placed.status is Status.SKIPPED, placed.message  # kwok: no container, no device report
    assert placed.message.startswith("unverified: the scheduler placed a pod with 1 nvidia.com/gpu on node kaic-gpu-")
    assert placed.value is not None
    nodev = probes.no_request_no_device()  # a no-request pod on a GPU node: placed, its view unknowable here
    assert nodev.status is Status.SKIPPED
    assert nodev.message.startswith("unverified: a pod without a request ran on node kaic-gpu-")
    assert _left(cluster, run) == []


def test_an_oversized_accelerator_pod_stays_unschedulable(cluster: ClusterClient) -> None:
    run = "kaic-e2e-sched-0002"
    pod = probe_pod("kaic-e2e-oversize", _settings(run), 9)  # 9 > the 8 GPUs of any node
    cluster.create(pod)
    try:
        def unschedulable() -> str | None:
            got = cluster.get("v1", "pods", "kaic-e2e-oversize", NAMESPACE) or {}
            for c in (got.get("status") or {}).get("conditions") or []:
                if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable":
                    return str(c.get("message"))
            return None

        message = wait_until(unschedulable, 60, "the oversized pod to be reported Unschedulable")
        assert "nvidia.com/gpu" in message
        assert (cluster.get("v1", "pods", "kaic-e2e-oversize", NAMESPACE) or {}).get("spec", {}).get("nodeName") is None
    finally:
        cluster.delete_collection("v1", "pods", NAMESPACE, run_selector(run))


def test_kueue_admits_a_gang_whole_and_holds_an_oversized_one(cluster: ClusterClient) -> None:
    run = "kaic-e2e-gang-0001"
    out = KueueGang(cluster, _settings(run)).run(available=16, size=2)
    assert out.status is Status.PASSED, (out.message, out.evidence)
    assert "stayed suspended with no pod" in out.message
    assert _left(cluster, run) == []


def test_auto_finds_kueue_and_a_scheduler_that_is_not_served_is_said(cluster: ClusterClient) -> None:
    from steps.provision.active_gang import choose, installed

    assert installed(cluster.api_resources()) == ["kueue"]  # the dev cluster runs Kueue, not Volcano or KAI
    assert isinstance(choose(cluster, _settings("kaic-e2e-gang-0002"), "auto"), KueueGang)
    assert choose(cluster, _settings("kaic-e2e-gang-0002"), "volcano") == (
        "probes.gang_scheduler is volcano, but the cluster does not serve its API")


def test_a_resource_claim_is_allocated_from_the_fake_drivers_slices(cluster: ClusterClient) -> None:
    run = "kaic-e2e-dra-0001"
    out = DraAllocation(cluster, _settings(run, node_selector={}), "gpu.example.com").run()
    assert out.status is Status.PASSED, (out.message, out.evidence)
    assert "gpu.example.com/kaic-dra-0/" in out.message
    assert _left(cluster, run) == []


def test_dra_isolation_allocates_distinct_devices_and_stays_unverified_without_container_output(
        cluster: ClusterClient) -> None:
    run = "kaic-e2e-dra-0002"
    out = DraIsolation(cluster, _settings(run, node_selector={}), "gpu.example.com").run()
    assert out.status is Status.SKIPPED, (out.message, out.evidence)  # kwok: no container output
    assert out.message.startswith("unverified: two claims allocated distinct devices on node kaic-dra-0")
    assert _left(cluster, run) == []


def test_kueues_webhook_refuses_an_invalid_object_and_its_controller_reconciles_a_valid_one(
        cluster: ClusterClient) -> None:
    run = "kaic-e2e-op-0001"
    out = OperatorWebhook(cluster, _settings(run)).run()
    assert out.status is Status.PASSED, (out.message, out.evidence)
    assert 'admission webhook "vclusterqueue.kb.io"' in (out.evidence or "")
    # KServe's CRD is installed here without its webhook: tried first, its invalid object accepted, failed.
    assert "tried 2: KServe: failed; Kueue: passed" in out.message
    prefix = f"kaic-{run_suffix(run)}-"

    def ours() -> list[str]:
        return [n for plural in ("clusterqueues", "resourceflavors")
                for n in ((o.get("metadata") or {}).get("name", "")
                          for o in cluster.list("kueue.x-k8s.io/v1beta2", plural)) if n.startswith(prefix)]

    wait_until(lambda: not ours(), 60, f"the probe's Kueue objects ({prefix}*) to be gone (finalizers)")


class StandInAutoscaler(threading.Thread):
    """What cluster-autoscaler's kwok provider would do for the GPU pool: when a probe pod is Unschedulable, add
    one node like the pool's (kwok makes it Ready); once no probe pod is left, remove it. The test plays the
    autoscaler because none can be built here: the module proxy refuses k8s.io/autoscaler/cluster-autoscaler
    (403). Everything else is real: the scheduler binding the pending pod to the new node, kwok running it, and
    the probe's observation through the API."""

    NODE = "kaic-gpu-autoscaled-0"

    def __init__(self, cluster: ClusterClient, run: str) -> None:
        super().__init__(daemon=True)
        self.cluster, self.selector = cluster, f"{run_selector(run)},kaic.dev/probe=autoscale"
        self.stop, self.added, self.removed = threading.Event(), 0.0, 0.0

    def run(self) -> None:
        seen_pods = False
        while not self.stop.wait(0.5):
            pods = self.cluster.list("v1", "pods", NAMESPACE, self.selector)
            seen_pods = seen_pods or bool(pods)
            if not self.added and any(c.get("reason") == "Unschedulable" for p in pods
                                      for c in (p.get("status") or {}).get("conditions") or []):
                pool = Topology.load(TOPOLOGY).pool("gpu")
                self.cluster.create(node_object(pool, self.NODE))
                self.added = time.monotonic()
            elif self.added and seen_pods and not pods and not self.removed:
                self.cluster.delete("v1", "nodes", self.NODE)
                self.removed = time.monotonic()

    def finish(self) -> None:
        """Stop watching and make sure the node it added is gone."""
        self.stop.set()
        self.join(10)
        self.cluster.delete("v1", "nodes", self.NODE)


def test_node_autoscaling_passes_when_the_pool_grows_runs_every_pod_and_shrinks_back(cluster: ClusterClient) -> None:
    run = "kaic-e2e-autoscale-0001"
    scaler = StandInAutoscaler(cluster, run)
    scaler.start()
    try:
        out = NodeAutoscaling(cluster, _settings(run), GPU_POOL, up_timeout_s=120, down_timeout_s=60).run()
    finally:
        scaler.finish()
    assert out.status is Status.PASSED, (out.message, out.evidence)
    assert "the pool grew from 2 to 3 node(s)" in out.message
    assert "shrank back to 2" in out.message
    assert f"joined: {StandInAutoscaler.NODE}" in (out.evidence or "")
    assert out.metric == "node_time_to_allocatable_s"
    assert out.value is not None
    assert out.value > 0
    assert _left(cluster, run) == []


def test_node_autoscaling_fails_where_nothing_adds_a_node(cluster: ClusterClient) -> None:
    """The dev cluster itself has no autoscaler: the third whole-node pod stays pending and the probe says so."""
    run = "kaic-e2e-autoscale-0002"
    out = NodeAutoscaling(cluster, _settings(run), GPU_POOL, up_timeout_s=15, down_timeout_s=15).run()
    assert out.status is Status.FAILED, (out.message, out.evidence)
    assert "the pool stayed at its 2 node(s) for 15s while 3 pods needed 3: no node was added" in out.message
    assert "Insufficient nvidia.com/gpu" in out.message
    assert out.metric is None
    assert _left(cluster, run) == []


def test_the_provision_step_on_the_dev_cluster(kubeconfig: str, tmp_path: Path) -> None:
    """`kaic step provision` with every active probe on: what the report gets from a control plane with
    simulated nodes."""
    profile = tmp_path / "devcluster.yaml"
    profile.write_text(json.dumps({
        "name": "devcluster", "platform": "devcluster", "image": "busybox:1.36",
        "kubernetes": {"kubeconfig": kubeconfig, "namespace": NAMESPACE},
        "accelerator": {"resource_name": "nvidia.com/gpu", "per_worker": 1, "node_selector": GPU_POOL,
                        "tolerations": list(NOT_READY)},
        "probes": {"active": True, "gang_scheduling": True, "gang_queue": QUEUE, "gang_observe_s": 15,
                   "timeout_s": 90, "output_wait_s": 5, "operator_webhook": True, "dra_claims": True,
                   "dra_device_class": "gpu.example.com"},
    }))
    run = subprocess.run(
        [sys.executable, "-m", "kaic.cli", "step", "provision", "--profile", str(profile), "--run-id",
         "kaic-e2e-provision-1"], env={**os.environ, "KAIC_HOME": str(tmp_path / "home")},
        capture_output=True, text=True, timeout=900)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    (Path(os.environ.get("KAIC_E2E_OUT", tmp_path)) / "provision-devcluster.txt").write_text(run.stdout + run.stderr)
    status = {t[2].split("[")[0]: t[0] for t in (ln.split() for ln in run.stdout.splitlines())
              if len(t) > 2 and t[2].startswith("provision.")}  # "  PASS MUST   provision.x (req) — message"
    assert status["provision.gang_admission"] == "PASS"
    assert status["provision.dra_allocation"] == "PASS"
    assert status["provision.operator_webhook"] == "PASS"
    assert status["provision.accelerator_pod"] == "skip"  # kwok: placed, its devices unverified
    assert status["provision.no_request_no_device"] == "skip"
    assert status["provision.claim_isolation"] == "skip"
    assert status["provision.driver_match"] == "skip"  # advertised 550.54.15, the pod's view unreadable
