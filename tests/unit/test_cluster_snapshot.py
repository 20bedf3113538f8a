"""SnapshotCluster over folders built from the real fixtures in ../shared/fixtures/k8s: Lists, single
objects, multi-document YAML, kubectl text tables, and what counts as known vs unknown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from kaic.cluster.snapshot import SnapshotCluster
from kaic.errors import ConfigError
from tests.conftest import shared_path

pytestmark = pytest.mark.unit


def _fixture(*parts: str) -> Path:
    return shared_path("fixtures", "k8s", *parts)


def _folder(tmp_path: Path, *files: Path) -> Path:
    d = tmp_path / "snap"
    d.mkdir(exist_ok=True)
    for f in files:
        shutil.copy(f, d / f.name)
    return d


def test_list_json_single_yaml_and_multi_document_yaml(tmp_path: Path) -> None:
    node_yaml = _fixture("nodes", "node_gce-kubeadm_2x-tesla-t4_mig-strategy-mixed_runai.yaml")
    d = _folder(tmp_path, _fixture("nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json"), node_yaml)
    docs = [yaml.safe_load(_fixture("nodes", n).read_text()) for n in (
        "node_gce-kubeadm_a100-sxm4-40gb_mig-7g.40gb_runai.yaml",)]
    docs[0]["metadata"]["name"] = "renamed"  # the same node again, as a second document
    (d / "more.yaml").write_text(yaml.safe_dump_all([{"kind": "ConfigMap", "apiVersion": "v1",
                                                      "metadata": {"name": "c", "namespace": "x"}}, *docs]))
    snap = SnapshotCluster(d)
    names = sorted(n["metadata"]["name"] for n in snap.list("v1", "nodes"))
    assert names == ["nori", "qa-mig-worker-gpu-1", "renamed"]
    assert snap.get("v1", "nodes", "nori")["spec"]["providerID"] == "rke2://nori"
    assert snap.get("v1", "configmaps", "c", "x") is not None
    assert snap.list("v1", "nodes", label_selector="nvidia.com/vgpu.present=true")[0]["metadata"]["name"] == "nori"
    assert snap.covers("v1", "nodes")  # whole objects prove a complete listing of their type
    assert not snap.covers("apps/v1", "daemonsets")


def test_resourceslice_list_and_condensed_paste(tmp_path: Path) -> None:
    d = _folder(tmp_path,
                _fixture("dra",
                         "resourceslice-list_v1_nvidia-gpu-and-compute-domain_vsphere-vks-grid-a100_cncf-v1.35.yaml"),
                _fixture("dra", "resourceslice_v1_nvidia-gpu_openshift-4.22-gcp-2x-t4_condensed-by-author.txt"))
    slices = SnapshotCluster(d).list("resource.k8s.io/v1", "resourceslices")
    assert len(slices) == 9  # 8 from the VKS List, 1 from the OpenShift paste (its `...` elisions dropped)
    t4 = next(s for s in slices if s["spec"]["nodeName"] == "harpatil4220c-g9kfm-gpu-c-rd8r8")
    assert [d["attributes"]["productName"]["string"] for d in t4["spec"]["devices"]] == ["Tesla T4", "Tesla T4"]


def test_api_resources_tables_crd_and_get_listings(tmp_path: Path) -> None:
    d = _folder(tmp_path, _fixture("discovery", "api-resources_resource.k8s.io_eks-h100_aicr.txt"),
                _fixture("discovery", "crds_trainer.kubeflow.org_aicr.txt"),
                _fixture("dra", "deviceclass-listing_nvidia-dra-driver_eks-h100_aicr.txt"),
                _fixture("nodes", "partial", "custom-columns_eks-p5.48xlarge-h100_aicr.txt"))
    snap = SnapshotCluster(d)
    kinds = {(r.group_version, r.kind) for r in snap.api_resources()}
    assert {("resource.k8s.io/v1", k) for k in ("DeviceClass", "ResourceClaim", "ResourceClaimTemplate",
                                                "ResourceSlice")} <= kinds
    assert snap.groups_covered == {"resource.k8s.io"}  # `--api-group=` limits what the table proves absent
    assert sorted(c["metadata"]["name"] for c in snap.list("apiextensions.k8s.io/v1", "customresourcedefinitions")) \
        == ["clustertrainingruntimes.trainer.kubeflow.org", "trainingruntimes.trainer.kubeflow.org",
            "trainjobs.trainer.kubeflow.org"]
    assert len(snap.list("resource.k8s.io/v1", "deviceclasses")) == 5
    assert snap.covers("resource.k8s.io/v1", "deviceclasses")  # an unfiltered `kubectl get deviceclass`
    nodes = snap.list("v1", "nodes")  # rebuilt from -o custom-columns: the columns' fields only
    assert nodes[0]["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "p5.48xlarge"
    assert nodes[0]["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert not snap.covers("v1", "nodes")  # the listing was filtered with -l


def test_version_and_empty_typed_list(tmp_path: Path) -> None:
    (tmp_path / "version.json").write_text(json.dumps({"clientVersion": {}, "serverVersion": {
        "major": "1", "minor": "34", "gitVersion": "v1.34.2"}}))
    (tmp_path / "node.k8s.io_v1_runtimeclasses.json").write_text(json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": []}))
    snap = SnapshotCluster(tmp_path)
    assert snap.version()["gitVersion"] == "v1.34.2"
    assert snap.list("node.k8s.io/v1", "runtimeclasses") == []
    assert snap.covers("node.k8s.io/v1", "runtimeclasses")  # listed, and empty: known absent


def test_a_type_discovery_does_not_serve_is_covered_and_empty(tmp_path: Path) -> None:
    """As `kaic snapshot` writes it: an unfiltered api-resources table, no file for a type not served. The
    live API answers "no objects" for such a type, so the snapshot must too (not "unknown")."""
    (tmp_path / "api-resources.txt").write_text(
        "NAME    SHORTNAMES   APIVERSION   NAMESPACED   KIND\nnodes                v1           false        Node\n")
    snap = SnapshotCluster(tmp_path)
    assert snap.groups_covered is None
    assert snap.covers("karpenter.sh/v1", "nodepools")  # not served: complete, and empty
    assert snap.list("karpenter.sh/v1", "nodepools") == []
    assert not snap.covers("v1", "nodes")  # served, but its objects were not dumped: unknown


@pytest.mark.parametrize(("name", "text", "error"), [
    ("labels.json", '{"nvidia.com/gpu.count": "1"}', "not a Kubernetes object"),
    ("broken.yaml", "a: [", "does not parse"),
    ("notes.txt", "hello world\nthis is not kubectl output", "not an api-resources table"),
])
def test_bad_files_are_one_line_config_errors(tmp_path: Path, name: str, text: str, error: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=error) as err:
        SnapshotCluster(tmp_path)
    assert name in str(err.value)
    assert "\n" not in str(err.value)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        SnapshotCluster(tmp_path / "missing")
