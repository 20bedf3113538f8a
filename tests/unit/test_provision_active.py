"""ACTIVE probes: the real probe code and pod specs, against FakeCluster (schema-validated objects, a
simulated scheduler, Kueue pod groups and device plugin), with node objects from real clusters."""

from __future__ import annotations

import copy
import json

import pytest

from kaic.cluster import RUN_ID_LABEL, ClusterError, record_calls
from kaic.cluster.fake import FakeCluster
from kaic.results import Status
from steps.provision.active import ActiveProbes, PodSettings, judge_driver, parse_report, probe_pod
from tests.conftest import shared_path

pytestmark = pytest.mark.unit


@pytest.fixture
def gpu_node() -> dict:
    doc = json.loads(shared_path("fixtures", "k8s", "nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")
                     .read_text())
    return doc["items"][0]


def two_gpu_nodes(node: dict) -> list[dict]:
    out = []
    for i in range(2):
        n = copy.deepcopy(node)
        n["metadata"]["name"] = f"gpu-{i}"
        n["metadata"]["labels"]["kubernetes.io/hostname"] = f"gpu-{i}"
        out.append(n)
    return out


SETTINGS = PodSettings("kaic", "ghcr.io/kaic-dev/kaic:0.1.0", "kaic-20260101-000000-abc123", "nvidia.com/gpu",
                       node_selector={"nvidia.com/gpu.present": "true"},
                       tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
                       timeout_s=5, gang_observe_s=3, gang_queue="kaic")


def probes(cluster: FakeCluster) -> ActiveProbes:
    t = [0.0]
    return ActiveProbes(cluster, SETTINGS, poll_s=0.5, clock=lambda: t[0], sleep=lambda s: t.__setitem__(0, t[0] + s))


def test_pod_specs_are_valid_and_labelled(gpu_node: dict) -> None:
    cluster = FakeCluster([gpu_node])  # validates every created object against the 1.35 schemas, strictly
    pods = (probe_pod("a", SETTINGS, 1), probe_pod("b", SETTINGS, 0, hold_s=30))
    for pod in pods:
        cluster.create(pod)
        assert pod["metadata"]["labels"][RUN_ID_LABEL] == SETTINGS.run_id
    limits = cluster.created[0]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in cluster.created[1]["spec"]["containers"][0]["resources"]["limits"]
    assert cluster.created[1]["spec"]["nodeSelector"] == SETTINGS.node_selector  # lands on a GPU node too


def test_invalid_object_is_rejected_like_the_api_server(gpu_node: dict) -> None:
    from kaic.cluster import ClusterError

    pod = probe_pod("a", SETTINGS, 1)
    pod["spec"]["containers"][0]["gpus"] = 1
    with pytest.raises(ClusterError, match="invalid") as err:
        FakeCluster([gpu_node]).create(pod)
    assert err.value.status == 422


def test_report_parser() -> None:
    rep = parse_report("UUID GPU-1\nDEV /dev/nvidia0\nKAIC-PROBE-DONE\n")
    assert rep.uuids == ("GPU-1",)
    assert rep.devices == ("/dev/nvidia0",)
    assert rep.done
    assert not parse_report("UUID GPU-1\n").done


def test_secure_cluster_passes_every_probe(gpu_node: dict) -> None:
    cluster = FakeCluster(two_gpu_nodes(gpu_node), start_after_reads=2)
    rec = record_calls(cluster)
    t = [0.0]
    p = ActiveProbes(rec, SETTINGS, poll_s=0.5, clock=lambda: t[0], sleep=lambda s: t.__setitem__(0, t[0] + s))
    accel = p.accelerator_pod()
    assert accel.status is Status.PASSED
    assert accel.metric == "pod_time_to_running_s"
    assert accel.value is not None
    assert accel.value > 0
    assert "GPU-gpu-" in (accel.evidence or "")
    assert p.no_request_no_device().status is Status.PASSED
    iso = p.device_isolation(available=2)
    assert iso.status is Status.PASSED, iso.message
    assert cluster.list("v1", "pods") == []  # everything the probes created is gone
    assert rec.rbac_rules() == {("", "pods"): {"create", "get", "list", "deletecollection"},
                                ("", "pods/log"): {"get"}}


def test_a_runtime_that_leaks_devices_fails_no_request(gpu_node: dict) -> None:
    out = probes(FakeCluster([gpu_node], leak_devices=True)).no_request_no_device()
    assert out.status is Status.FAILED
    assert "GPU-nori-0" in (out.evidence or "")


def test_a_device_plugin_that_shares_fails_isolation(gpu_node: dict) -> None:
    out = probes(FakeCluster([gpu_node], share_devices=True)).device_isolation(available=2)
    assert out.status is Status.FAILED
    assert out.message == "the pods share a device"


def test_unschedulable_accelerator_pod_fails_with_the_scheduler_reason(gpu_node: dict) -> None:
    node = copy.deepcopy(gpu_node)
    node["status"]["allocatable"]["nvidia.com/gpu"] = "0"
    out = probes(FakeCluster([node])).accelerator_pod()
    assert out.status is Status.FAILED
    assert "insufficient nvidia.com/gpu" in out.message
    assert "timed out" in out.message


def test_isolation_needs_two_devices(gpu_node: dict) -> None:
    out = probes(FakeCluster([gpu_node])).device_isolation(available=1)
    assert out.status is Status.SKIPPED
    assert "needs 2" in out.message


class NoRuntimeCluster(FakeCluster):
    """Pods are placed and Running, but nothing answers for their output (a kwok node: no container runtime).
    The error text is what kube-apiserver returned for a kwok pod's log on the dev cluster."""

    def pod_logs(self, name: str, namespace: str) -> str:
        raise ClusterError("GET .../log: HTTP 500: Get \"https://kaic-gpu-0:10250/containerLogs/...\": dial tcp: "
                           "lookup kaic-gpu-0: no such host", 500)


def test_a_node_without_a_runtime_makes_the_device_probes_unverified_never_passed(gpu_node: dict) -> None:
    cluster = NoRuntimeCluster([gpu_node])
    t = [0.0]
    probes = ActiveProbes(cluster, SETTINGS, poll_s=0.5, clock=lambda: t[0],
                          sleep=lambda s: t.__setitem__(0, t[0] + s))
    pod = probes.accelerator_pod()
    assert pod.status is Status.SKIPPED
    assert pod.message.startswith("unverified: the scheduler placed a pod with 1 nvidia.com/gpu on node ")
    assert "output cannot be read" in pod.message
    assert pod.metric == "pod_time_to_running_s"
    nodev = probes.no_request_no_device()
    assert nodev.status is Status.SKIPPED
    assert nodev.message.startswith("unverified: ")
    assert cluster.list("v1", "pods") == []  # nothing left behind


@pytest.mark.parametrize(("log", "advertised", "status", "says"), [
    ("UUID GPU-1\nDRIVER 550.54.15\nKAIC-PROBE-DONE\n", {"n1": "550.54.15"}, Status.PASSED, "is the one"),
    ("UUID GPU-1\nDRIVER 550.54.14\nKAIC-PROBE-DONE\n", {"n1": "550.54.15"}, Status.FAILED, "not the advertised"),
    ("UUID GPU-1\nDRIVER 550.54.15\nKAIC-PROBE-DONE\n", {}, Status.FAILED, "advertises no driver"),
    ("DEV /dev/dri/renderD128\nKAIC-PROBE-DONE\n", {"n1": "6.10.5"}, Status.SKIPPED, "unknown: "),
])
def test_driver_match_on_recorded_reports(log: str, advertised: dict[str, str], status: Status, says: str) -> None:
    out = judge_driver(("n1", parse_report(log)), advertised)
    assert out.status is status
    assert says in out.message


def test_driver_match_without_container_output_is_unverified() -> None:
    out = judge_driver(("kaic-gpu-0", None), {"kaic-gpu-0": "550.54.15"})
    assert out.status is Status.SKIPPED
    assert out.message.startswith("unverified: node kaic-gpu-0 advertises driver 550.54.15")
