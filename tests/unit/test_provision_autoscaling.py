"""cluster_autoscaling's probe, pure parts: which nodes form the pool, and the verdict on what was observed
(the driver runs on the dev cluster: tests/e2e/test_provision_active_devcluster.py)."""

from __future__ import annotations

import copy
import json

import pytest

from kaic.results import Status
from steps.provision.active_autoscaling import PoolNode, ScaleSeen, judge_autoscaling, pool_nodes
from tests.conftest import shared_path

pytestmark = pytest.mark.unit

GPU = "nvidia.com/gpu"


@pytest.fixture
def real_node() -> dict:
    doc = json.loads(shared_path("fixtures", "k8s", "nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")
                     .read_text())
    return doc["items"][0]


def variant(node: dict, name: str, **change: object) -> dict:
    n = copy.deepcopy(node)
    n["metadata"]["name"] = name
    for key, value in change.items():
        if key == "ready":
            for c in n["status"]["conditions"]:
                if c["type"] == "Ready":
                    c["status"] = "True" if value else "False"
        elif key == "gpus":
            n["status"]["allocatable"][GPU] = str(value)
        elif key == "pool":
            n["metadata"]["labels"]["pool"] = value
        elif key == "cordoned":
            n["spec"]["unschedulable"] = value
    return n


def test_the_pool_is_its_ready_schedulable_nodes_with_accelerators(real_node: dict) -> None:
    gpus = int(real_node["status"]["allocatable"][GPU])
    nodes = [variant(real_node, "b", pool="gpu"), variant(real_node, "a", pool="gpu"),
             variant(real_node, "not-ready", pool="gpu", ready=False),
             variant(real_node, "cordoned", pool="gpu", cordoned=True),
             variant(real_node, "no-gpus", pool="gpu", gpus=0),
             variant(real_node, "other-pool", pool="cpu")]
    assert pool_nodes(nodes, {"pool": "gpu"}, GPU) == [PoolNode("a", gpus), PoolNode("b", gpus)]
    assert len(pool_nodes(nodes, {}, GPU)) == 3  # no selector: every node with allocatable accelerators
    assert pool_nodes(nodes, {"pool": "gpu"}, "amd.com/gpu") == []


def seen(**kw: object) -> ScaleSeen:
    values: dict[str, object] = {"start": ("gpu-0", "gpu-1"), "pods": 3, "running": 3, "new_nodes": ("gpu-2",),
                                 "new_node_s": 42.0, "shrunk_s": 600.0, "up_timeout_s": 900, "down_timeout_s": 1800,
                                 **kw}
    return ScaleSeen(**values)  # type: ignore[arg-type]


def test_grown_then_shrunk_back_passes() -> None:
    status, message = judge_autoscaling(seen())
    assert status is Status.PASSED
    assert message == ("the pool grew from 2 to 3 node(s), the first new one allocatable after 42.0s, and all 3 "
                       "pods ran; after the pods were deleted it shrank back to 2 in 600.0s")


@pytest.mark.parametrize(("change", "words"), [
    ({"new_nodes": (), "new_node_s": None, "running": 2, "shrunk_s": None,
      "pending": "Unschedulable: 0/5 nodes are available: 5 Insufficient nvidia.com/gpu."},
     "the pool stayed at its 2 node(s) for 900s while 3 pods needed 3: no node was added; a pod stayed pending: "
     "Unschedulable: 0/5 nodes are available"),
    ({"running": 2, "shrunk_s": None, "pending": "phase Pending"},
     "node(s) gpu-2 joined the pool, but only 2/3 pods ran within 900s (phase Pending)"),
    ({"shrunk_s": None, "left": ("gpu-2",)},
     "but gpu-2 still in the pool 1800s after the pods were deleted: it did not shrink back"),
])
def test_anything_less_fails_and_says_what_was_missing(change: dict, words: str) -> None:
    status, message = judge_autoscaling(seen(**change))
    assert status is Status.FAILED
    assert words in message
