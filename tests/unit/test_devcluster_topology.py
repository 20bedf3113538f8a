"""devcluster/topology.yaml into Node objects and the fake DRA driver's ResourceSlices (pure logic)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kaic.devcluster.layout import TOPOLOGY_FILE
from kaic.devcluster.topology import KWOK_ANNOTATION, POOL_LABEL, Topology

pytestmark = pytest.mark.unit


def test_every_node_is_kwok_managed_and_labelled_with_its_pool() -> None:
    topology = Topology.load(TOPOLOGY_FILE)
    nodes = topology.nodes()
    assert len(nodes) == sum(p.count for p in topology.pools)
    for node in nodes:
        assert node["metadata"]["annotations"] == {KWOK_ANNOTATION: "fake"}
        assert node["status"]["allocatable"] == node["status"]["capacity"]
    gpu = [n for n in nodes if n["metadata"]["labels"][POOL_LABEL] == "gpu"]
    assert sum(int(n["status"]["allocatable"]["nvidia.com/gpu"]) for n in gpu) == 16
    for key in ("nvidia.com/gpu.product", "nvidia.com/gpu.memory", "nvidia.com/gpu.count",
                "nvidia.com/cuda.driver.major", "nvidia.com/cuda.runtime.major", "nvidia.com/gpu.present"):
        assert all(key in n["metadata"]["labels"] for n in gpu), key


def test_slices_are_owned_by_their_node_with_distinct_devices() -> None:
    topology = Topology.load(TOPOLOGY_FILE)
    dra_nodes = [n for p in topology.pools if p.dra for n in p.node_names()]
    slices = topology.resource_slices({name: f"uid-{name}" for name in dra_nodes} | {"not-a-dra-node": "x"})
    assert [s["spec"]["nodeName"] for s in slices] == dra_nodes
    for slice_ in slices:
        owner = slice_["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"]) == ("Node", f"uid-{slice_['spec']['nodeName']}")
        uuids = [d["attributes"]["uuid"]["string"] for d in slice_["spec"]["devices"]]
        assert len(set(uuids)) == len(uuids)
        assert all(d["attributes"]["driverVersion"] == {"version": "1.0.0"} for d in slice_["spec"]["devices"])
    # a node not yet created gets no slice
    assert topology.resource_slices({}) == []


def test_an_unknown_key_in_the_topology_is_refused() -> None:
    with pytest.raises(ValidationError, match="gpus"):
        Topology.model_validate({"pools": [{"name": "x", "count": 1, "capacity": {}, "gpus": 8}],
                                 "dra": {"driver": "d", "deviceClass": "d"}})
