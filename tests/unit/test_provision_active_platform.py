"""The platform ACTIVE probes' pure parts: the objects they create and the judges of what was observed, on
recorded outputs (the dev cluster's ResourceClaim and slices as the API server returned them). The drivers
run against the real control plane in tests/e2e/test_provision_active_devcluster.py."""

from __future__ import annotations

import pytest

from kaic.cluster.fake import FakeCluster
from kaic.results import Status
from steps.provision.active import PodSettings
from steps.provision.active_platform import (
    GangSeen,
    allocated_devices,
    claim_pod,
    gang_job,
    isolation_pod,
    judge_allocation,
    judge_gang,
    judge_isolation,
    resource_claim,
    split_sidecar,
)

pytestmark = pytest.mark.unit

S = PodSettings("kaic-queue", "busybox:1.36", "kaic-20261129-130000-abc123", "nvidia.com/gpu", gang_queue="gpu",
                node_selector={"kaic.dev/pool": "gpu"})

# As kube-scheduler wrote it on the dev cluster (allocation from the fake driver's pool on kaic-dra-0).
CLAIM = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "c"},
         "status": {"allocation": {"devices": {"results": [
             {"request": "accelerator", "driver": "gpu.example.com", "pool": "kaic-dra-0", "device": "gpu-2"}]}}}}
SLICE = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": "kaic-dra-0-gpu"},
         "spec": {"driver": "gpu.example.com", "nodeName": "kaic-dra-0", "pool": {"name": "kaic-dra-0", "generation": 1,
                                                                                "resourceSliceCount": 1},
                  "devices": [{"name": f"gpu-{i}"} for i in range(4)]}}


def test_gang_job_is_a_valid_suspended_job_in_the_queue() -> None:
    job = gang_job("kaic-x-gang-fits", S, 3, "gang-fits")
    FakeCluster([]).create(job)  # the Kubernetes OpenAPI schema accepts it
    assert job["spec"]["parallelism"] == job["spec"]["completions"] == 3
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"
    limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"


def test_claim_and_its_pod_are_valid_objects() -> None:
    fake = FakeCluster([])
    claim = resource_claim("kaic-x-claim", S, "gpu.example.com")
    pod = claim_pod("kaic-x-claim-pod", S, "kaic-x-claim")
    fake.create(pod)
    assert claim["spec"]["devices"]["requests"][0]["exactly"]["deviceClassName"] == "gpu.example.com"
    assert pod["spec"]["resourceClaims"] == [{"name": "accelerator", "resourceClaimName": "kaic-x-claim"}]
    assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"]["limits"]
    assert "nodeSelector" not in pod["spec"]  # the claim places it, not the extended-resource pool's selector


@pytest.mark.parametrize(("fits", "over", "status"), [
    (GangSeen(2, 2, True, 3.0), GangSeen(17, 0, False, 30.0), Status.PASSED),
    (GangSeen(2, 1, True, 300.0), None, Status.FAILED),  # half a gang: not all-or-nothing
    (GangSeen(2, 2, True, 3.0), GangSeen(17, 0, True, 1.0), Status.FAILED),  # over-sized gang admitted
    (GangSeen(2, 2, True, 3.0), GangSeen(17, 3, True, 1.0), Status.FAILED),
])
def test_judge_gang(fits: GangSeen, over: GangSeen | None, status: Status) -> None:
    assert judge_gang(fits, over)[0] is status


def test_judge_allocation_on_a_recorded_claim() -> None:
    devices = allocated_devices(CLAIM)
    assert devices == [("gpu.example.com", "kaic-dra-0", "gpu-2")]
    status, message = judge_allocation(devices, [SLICE])
    assert status is Status.PASSED
    assert "gpu.example.com/kaic-dra-0/gpu-2" in message
    assert judge_allocation([], [SLICE])[0] is Status.FAILED  # never allocated
    assert judge_allocation([("gpu.example.com", "kaic-dra-0", "gpu-9")], [SLICE])[0] is Status.FAILED


def test_isolation_pods_are_valid_and_only_the_probe_container_holds_the_claim() -> None:
    fake = FakeCluster([])
    claimed = isolation_pod("kaic-x-iso-a", S, "kaic-x-iso-claim-a")
    unclaimed = isolation_pod("kaic-x-iso-none", S, None, "kaic-dra-0")
    fake.create(claimed)
    fake.create(unclaimed)
    main, sidecar = claimed["spec"]["containers"]
    assert main["resources"]["claims"] == [{"name": "accelerator"}]
    assert "claims" not in sidecar["resources"]
    assert sidecar["volumeMounts"] == main["volumeMounts"]
    assert unclaimed["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "kaic-dra-0"}
    assert "resourceClaims" not in unclaimed["spec"]


# What the claimed pod's log looks like on a node with two GPUs (its own, then its sidecar's lines).
LOG_A = "UUID GPU-1111\nDEV /dev/nvidia0\nKAIC-PROBE-DONE\n"
LOG_B = "UUID GPU-2222\nDEV /dev/nvidia1\nKAIC-PROBE-DONE\n"


@pytest.mark.parametrize(("a", "b", "none", "status", "why"), [
    (LOG_A, LOG_B, "KAIC-PROBE-DONE\n", Status.PASSED, "only its own"),
    (LOG_A, LOG_A, "KAIC-PROBE-DONE\n", Status.FAILED, "same device"),
    ("UUID GPU-1111\nSIDECAR UUID GPU-1111\nKAIC-PROBE-DONE\n", LOG_B, "KAIC-PROBE-DONE\n", Status.FAILED,
     "second container"),
    (LOG_A, LOG_B, "DEV /dev/nvidia0\nKAIC-PROBE-DONE\n", Status.FAILED, "without a claim"),
    ("KAIC-PROBE-DONE\n", LOG_B, "KAIC-PROBE-DONE\n", Status.FAILED, "sees no device"),
])
def test_judge_isolation_on_recorded_logs(a: str, b: str, none: str, status: Status, why: str) -> None:
    own_a, side_a = split_sidecar(a)
    own_b, _ = split_sidecar(b)
    own_none, _ = split_sidecar(none)
    got, message = judge_isolation(own_a, side_a, own_b, own_none)
    assert got is status
    assert why in message
