"""READ probes over snapshot folders built from the real fixtures, with the expected result per requirement.

Folders are assembled in tmp_path from ../shared/fixtures/k8s files as they are; where a test needs a
fact no fixture records (a version, an empty listing), it adds it in the shape `kaic snapshot` writes.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kaic import catalog
from kaic.cluster.snapshot import SnapshotCluster
from kaic.profiles import load_profile
from kaic.results import Level, Outcome, RunContext, Status
from kaic.stepkit import stamp
from steps.provision.read_probes import READ_PROBES, evaluate
from steps.provision.view import gather
from tests.conftest import shared_path

pytestmark = pytest.mark.unit

EMPTY = {"apiVersion": "v1", "kind": "List", "items": []}
# Listed in full and empty besides what the fixtures show: no other CRD or aggregated API, so every other
# scheduler/operator group is known absent (without these, kaic says "unknown" for them, not "failed").
NO_OTHER_APIS = ("apiextensions.k8s.io_v1_customresourcedefinitions", "apiregistration.k8s.io_v1_apiservices")


def fx(*parts: str) -> Path:
    return shared_path("fixtures", "k8s", *parts)


def snapshot(tmp_path: Path, *files: Path, empty: tuple[str, ...] = (), version: str = "1.35") -> SnapshotCluster:
    d = tmp_path / "snap"
    d.mkdir(exist_ok=True)
    for f in files:
        shutil.copy(f, d / f.name)
    for name in empty:  # a type listed in full and found empty, as `kaic snapshot` records it
        (d / f"{name}.json").write_text(json.dumps(EMPTY))
    major, minor = version.split(".")
    (d / "version.json").write_text(json.dumps({"serverVersion": {"major": major, "minor": minor,
                                                                  "gitVersion": f"v{version}.0"}}))
    return SnapshotCluster(d)


def results(snap: SnapshotCluster) -> dict[str, Outcome]:
    return {o.check_id: o for o in evaluate(gather(snap, "snapshot"))}


def unverified(o: Outcome) -> bool:
    """Objects seen, behaviour not observed: the evidence rule's `unverified` (a skipped row), never passed."""
    return o.status is Status.SKIPPED and o.message.startswith("unverified: ") and "missing: " in o.message


def test_every_requirement_id_has_a_read_probe() -> None:
    covered = {catalog.check(c).requirement_id for c in READ_PROBES}
    assert covered == {r.id for r in catalog.REQUIREMENTS}


def test_mig_node_shares_gpus_and_advertises_its_driver(tmp_path: Path) -> None:
    r = results(snapshot(tmp_path, fx("nodes", "node_gce-kubeadm_a100-sxm4-40gb_mig-mixed-3-instances_runai.yaml")))
    assert unverified(r["provision.gpu_sharing"])
    assert "nvidia.com/mig-1g.5gb=2" in (r["provision.gpu_sharing"].evidence or "")
    assert unverified(r["provision.driver_versions"])
    assert "520.56.06" in (r["provision.driver_versions"].evidence or "")
    assert unverified(r["provision.device_plugin"])  # allocatable MIG devices: presence, not isolation
    assert r["provision.vgpu"].status is Status.FAILED  # a full node listing with no vGPU product
    # what the folder does not show stays unknown, never failed
    assert r["provision.accelerator_exporter"].status is Status.SKIPPED
    assert r["provision.accelerator_exporter"].message.startswith("unknown")


def test_t4_node_without_mig_does_not_share(tmp_path: Path) -> None:
    r = results(snapshot(tmp_path, fx("nodes", "node_gce-kubeadm_2x-tesla-t4_mig-strategy-mixed_runai.yaml")))
    assert r["provision.gpu_sharing"].status is Status.FAILED


def test_vgpu_node_is_a_virtualized_accelerator(tmp_path: Path) -> None:
    r = results(snapshot(tmp_path, fx("nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")))
    assert unverified(r["provision.vgpu"])
    assert "NVIDIA-A16-4Q" in (r["provision.vgpu"].evidence or "")


def test_vks_label_maps_and_grid_resourceslices_are_vgpu(tmp_path: Path) -> None:
    text = fx("nodes", "partial", "labels-only_vsphere-vks_4-nodes_grid-a100-vgpu_cncf-ai-conformance.txt").read_text()
    dec, i, nodes = json.JSONDecoder(), 0, []
    while i < len(text.strip()):  # four label maps back to back -> Node objects carrying those labels
        labels, i = dec.raw_decode(text, i)
        nodes.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"vks-{len(nodes)}", "labels": labels}})
        while i < len(text) and text[i].isspace():
            i += 1
    (tmp_path / "nodes.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}))
    r = results(snapshot(tmp_path, tmp_path / "nodes.json", fx(
        "dra", "resourceslice-list_v1_nvidia-gpu-and-compute-domain_vsphere-vks-grid-a100_cncf-v1.35.yaml")))
    assert len(nodes) == 4
    assert unverified(r["provision.vgpu"])
    assert "GRID A100-40C" in (r["provision.vgpu"].evidence or "")
    assert "580.126.9" in (r["provision.driver_versions"].evidence or "")  # DRA driverVersion attribute
    assert unverified(r["provision.driver_versions"])  # the labels-only nodes are covered by the DRA slices


def test_dra_served_with_deviceclasses_and_resourceslices_passes(tmp_path: Path) -> None:
    r = results(snapshot(tmp_path, fx("discovery", "api-resources_resource.k8s.io_eks-h100_aicr.txt"),
                         fx("dra", "deviceclass-listing_nvidia-dra-driver_eks-h100_aicr.txt"),
                         fx("dra", "resourceslice-list_v1_gpu.example.com_dra-example-driver-kind_README.yaml")))
    dra = r["provision.dra_apis"]
    assert dra.status is Status.PASSED
    assert "gpu.nvidia.com" in (dra.evidence or "")
    assert "gpu.example.com" in (dra.evidence or "")


@pytest.mark.parametrize(("version", "level"), [("1.33", Level.SHOULD), ("1.34", Level.MUST), ("1.35", Level.MUST)])
def test_dra_support_needs_no_driver(tmp_path: Path, version: str, level: Level) -> None:
    # KAR-0051 asks only that the v1 kinds are served; the old probe failed a cluster without a driver (a bug)
    snap = snapshot(tmp_path, fx("discovery", "api-resources_resource.k8s.io_openshift-4.22_cncf.txt"),
                    empty=("resource.k8s.io_v1_deviceclasses", "resource.k8s.io_v1_resourceslices"), version=version)
    dra = results(snap)["provision.dra_apis"]
    assert dra.status is Status.PASSED
    assert "DeviceClasses: none" in (dra.evidence or "")
    ctx = RunContext("r", "0", datetime.now(UTC), "generic", "c", version, "cpu")
    row = stamp([dra], ctx, "provision", load_profile("generic"))[0]
    assert (row.requirement_id, row.level, row.status) == ("dra_support", level, Status.PASSED)


def test_dra_v1beta1_is_accepted_only_at_133(tmp_path: Path) -> None:
    table = f"{'NAME':26}{'APIVERSION':28}{'NAMESPACED':13}KIND\n" + "\n".join(
        f"{p:26}{'resource.k8s.io/v1beta1':28}{ns:13}{k}" for p, ns, k in (
            ("deviceclasses", "false", "DeviceClass"), ("resourceclaims", "true", "ResourceClaim"),
            ("resourceclaimtemplates", "true", "ResourceClaimTemplate"), ("resourceslices", "false", "ResourceSlice")))
    (tmp_path / "api-resources.txt").write_text(table + "\n")
    at133 = results(snapshot(tmp_path, tmp_path / "api-resources.txt", version="1.33"))["provision.dra_apis"]
    assert at133.status is Status.PASSED
    assert "v1beta1" in at133.message
    at134 = results(snapshot(tmp_path, tmp_path / "api-resources.txt", version="1.34"))["provision.dra_apis"]
    assert at134.status is Status.FAILED
    assert "only v1beta1 served" in at134.message


def test_dra_not_served_fails(tmp_path: Path) -> None:
    # the Gateway API table as if it were a full `kubectl api-resources` (command line dropped): no resource.k8s.io
    table = fx("discovery", "api-resources_gateway.networking.k8s.io_viettel-onprem_cncf.txt").read_text()
    (tmp_path / "api-resources.txt").write_text(table.split("\n", 1)[1])
    dra = results(snapshot(tmp_path, tmp_path / "api-resources.txt"))["provision.dra_apis"]
    assert dra.status is Status.FAILED
    assert "does not serve deviceclasses" in dra.message


def test_gateway_api_discovery(tmp_path: Path) -> None:
    gw = fx("discovery", "api-resources_gateway.networking.k8s.io_viettel-onprem_cncf.txt")
    r = results(snapshot(tmp_path, gw))
    assert r["provision.gateway_api"].status is Status.SKIPPED  # served; GatewayClasses not captured
    r = results(snapshot(tmp_path, gw, empty=("gateway.networking.k8s.io_v1_gatewayclasses",)))
    assert r["provision.gateway_api"].status is Status.FAILED
    assert "no GatewayClass is Accepted" in r["provision.gateway_api"].message
    (tmp_path / "gc.yaml").write_text(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: kgateway}\n"
        "spec: {controllerName: kgateway.dev/kgateway}\n"
        "status: {conditions: [{type: Accepted, status: 'True', reason: Accepted}]}\n")
    r = results(snapshot(tmp_path, fx("discovery", "crds_gateway.networking.k8s.io_eks-h100-kgateway_aicr.txt"),
                         tmp_path / "gc.yaml"))
    assert unverified(r["provision.gateway_api"])  # an Accepted class is presence, not routing
    assert "kgateway" in (r["provision.gateway_api"].evidence or "")


def test_inference_extension_crds(tmp_path: Path) -> None:
    r = results(snapshot(tmp_path, fx("discovery", "crds_inference.networking.x-k8s.io_eks-h100-kgateway_aicr.txt")))
    assert unverified(r["provision.inference_extension"])


def test_kueue_discovery(tmp_path: Path) -> None:
    kueue = fx("discovery", "api-resources_kueue.x-k8s.io_viettel-onprem_cncf.txt")
    gang = results(snapshot(tmp_path, kueue))["provision.gang_scheduler"]
    assert gang.status is Status.SKIPPED
    assert "controller status not captured" in gang.message
    assert "kueue.x-k8s.io served" in (gang.evidence or "")
    gang = results(snapshot(tmp_path, kueue, empty=("apps_v1_deployments", "apps_v1_daemonsets", *NO_OTHER_APIS)))[
        "provision.gang_scheduler"]
    assert gang.status is Status.FAILED
    assert "no controller Running" in gang.message
    (tmp_path / "kueue.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: kueue-controller-manager, namespace: kueue-system}\n"
        "spec: {replicas: 1}\nstatus: {readyReplicas: 1, replicas: 1}\n")
    gang = results(snapshot(tmp_path, kueue, tmp_path / "kueue.yaml", empty=("apps_v1_daemonsets",)))[
        "provision.gang_scheduler"]
    assert unverified(gang)  # a Running Kueue is presence; provision.gang_admission shows the behaviour
    assert "kueue-controller-manager ready 1/1" in (gang.evidence or "")


@pytest.mark.parametrize(("fixture", "operator"), [
    ("crds_serving.kserve.io_viettel-onprem_cncf.txt", "KServe"),
    ("crds_trainer.kubeflow.org_aicr.txt", "Kubeflow Trainer"),
])
def test_ai_operator_crds(tmp_path: Path, fixture: str, operator: str) -> None:
    op = results(snapshot(tmp_path, fx("discovery", fixture)))["provision.ai_operator"]
    assert op.status is Status.SKIPPED
    assert operator in (op.evidence or "")
    op = results(snapshot(tmp_path, fx("discovery", fixture), empty=(
        "apps_v1_deployments", "apps_v1_daemonsets", "admissionregistration.k8s.io_v1_validatingwebhookconfigurations",
        "admissionregistration.k8s.io_v1_mutatingwebhookconfigurations", *NO_OTHER_APIS)))["provision.ai_operator"]
    assert op.status is Status.FAILED


def test_empty_folder_knows_nothing(tmp_path: Path) -> None:
    r = results(snapshot(tmp_path))
    assert len(r) == 16
    assert all(o.status is Status.SKIPPED for o in r.values()), {k: o.message for k, o in r.items()
                                                                 if o.status is not Status.SKIPPED}
