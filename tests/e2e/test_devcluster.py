"""The dev cluster itself (`make cluster`, docs/dev-cluster.md): the pinned Kubernetes version, the topology's
nodes and GPUs, DRA served with the fake driver's slices, Kueue's webhooks answering, and a clean stop.

Expectations come from devcluster/topology.yaml and the build table, never from numbers written here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kaic.devcluster import kueue
from kaic.devcluster.build import KUBERNETES
from kaic.devcluster.layout import TOPOLOGY_FILE, ClusterPaths
from kaic.devcluster.processes import State, port_listens
from kaic.devcluster.topology import POOL_LABEL, Topology

pytestmark = pytest.mark.e2e

TOPOLOGY = Topology.load(TOPOLOGY_FILE)


@pytest.fixture(scope="module")
def api(kubeconfig: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig)


def _ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def test_version_is_the_pinned_kubernetes(api: client.ApiClient) -> None:
    assert client.VersionApi(api).get_code().git_version == KUBERNETES.version


def test_nodes_are_the_topology_with_its_gpus(api: client.ApiClient) -> None:
    nodes = {n.metadata.name: n for n in client.CoreV1Api(api).list_node(label_selector=POOL_LABEL).items}
    for pool in TOPOLOGY.pools:
        for name in pool.node_names():
            assert name in nodes, f"{name} of pool {pool.name} is missing"
            assert _ready(nodes[name]), f"{name} is not Ready"
            labels = nodes[name].metadata.labels
            assert {k: labels.get(k) for k in pool.labels} == pool.labels
    gpu_pool = TOPOLOGY.pool("gpu")
    gpu_nodes = [n for n in nodes.values() if n.metadata.labels[POOL_LABEL] == "gpu"]
    assert len(gpu_nodes) == gpu_pool.count == 2
    total = sum(int(n.status.allocatable["nvidia.com/gpu"]) for n in gpu_nodes)
    assert total == gpu_pool.count * int(gpu_pool.capacity["nvidia.com/gpu"]) == 16
    assert all(n.metadata.labels["nvidia.com/gpu.present"] == "true" for n in gpu_nodes)


def test_dra_v1_is_served_with_the_fake_drivers_slices(api: client.ApiClient) -> None:
    served = {r.name for r in client.ResourceV1Api(api).get_api_resources().resources}
    assert {"deviceclasses", "resourceslices", "resourceclaims", "resourceclaimtemplates"} <= served
    classes = {c.metadata.name for c in client.ResourceV1Api(api).list_device_class().items}
    assert TOPOLOGY.dra.deviceClass in classes
    slices = client.ResourceV1Api(api).list_resource_slice(field_selector=f"spec.driver={TOPOLOGY.dra.driver}").items
    dra_pool = next(p for p in TOPOLOGY.pools if p.dra is not None)
    assert sorted(s.spec.node_name for s in slices) == sorted(dra_pool.node_names())
    for slice_ in slices:
        assert dra_pool.dra is not None
        assert len(slice_.spec.devices) == dra_pool.dra.devices
        assert all(d.attributes["driverVersion"].version == "1.0.0" for d in slice_.spec.devices)


def test_kueue_crds_are_established_and_its_queue_exists(api: client.ApiClient) -> None:
    crds = [c for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items
            if c.spec.group == "kueue.x-k8s.io"]
    assert {"clusterqueues.kueue.x-k8s.io", "localqueues.kueue.x-k8s.io", "workloads.kueue.x-k8s.io"} <= {
        c.metadata.name for c in crds}
    for crd in crds:
        assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions), crd.metadata.name
    custom = client.CustomObjectsApi(api)
    queue = custom.get_namespaced_custom_object("kueue.x-k8s.io", "v1beta2", kueue.QUEUE_NAMESPACE, "localqueues",
                                                kueue.LOCAL_QUEUE)
    assert queue["spec"]["clusterQueue"] == kueue.CLUSTER_QUEUE


def _cluster_queue(name: str, gpus: str) -> dict[str, Any]:
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": name},
            "spec": {"resourceGroups": [{"coveredResources": ["nvidia.com/gpu"], "flavors": [
                {"name": kueue.FLAVOR, "resources": [{"name": "nvidia.com/gpu", "nominalQuota": gpus}]}]}]}}


def test_kueue_webhook_rejects_an_invalid_cluster_queue_and_admits_a_valid_one(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    # A negative quota passes the CRD's schema; only Kueue's validating webhook refuses it.
    with pytest.raises(ApiException) as refused:
        custom.create_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "clusterqueues",
                                            _cluster_queue("e2e-invalid", "-1"), dry_run="All")
    assert refused.value.status in (400, 403, 422)
    assert 'admission webhook "vclusterqueue.kb.io" denied the request' in refused.value.body
    created = custom.create_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "clusterqueues",
                                                  _cluster_queue("e2e-valid", "4"), dry_run="All")
    # Kueue's mutating webhook answered too: it adds its finalizer to every ClusterQueue.
    assert "kueue.x-k8s.io/resource-in-use" in created["metadata"]["finalizers"]


def test_cluster_down_leaves_no_process_and_no_port(tmp_path: Path) -> None:
    """A second, throwaway cluster in its own KAIC_HOME: up, then down; nothing it recorded survives.
    Without the addons: the Argo workflow-controller's health port is fixed, and the session's cluster has it."""
    home = tmp_path / "devcluster-home"
    environ = {**os.environ, "KAIC_HOME": str(home)}
    paths = ClusterPaths(home / "cluster")
    command = [sys.executable, "-m", "kaic.devcluster"]
    try:
        started = subprocess.run([*command, "up", "--no-addons"], env=environ, capture_output=True, text=True,
                                 timeout=600)
        assert started.returncode == 0, started.stderr[-3000:] + started.stdout[-2000:]
        assert f"kubeconfig: {paths.kubeconfig}" in started.stdout
        recorded = State(paths.state).read()
        assert {"etcd", "kube-apiserver", "kwok", "kueue"} <= {r.name for r in recorded}
        assert all(r.process() is not None for r in recorded)
    finally:
        stopped = subprocess.run([*command, "down"], env=environ, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert [r.name for r in recorded if r.process() is not None] == []
    assert [p for r in recorded for p in r.ports if port_listens(p)] == []
    again = subprocess.run([*command, "down"], env=environ, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0  # idempotent
