"""The gang probe through a PodGroup scheduler (Volcano, KAI) and the choice of scheduler: the real probe code
against FakeCluster, whose simulated scheduler admits a PodGroup's pods only when all `minMember` of them fit
(the gang behaviour), with node objects from a real cluster. Volcano and KAI cannot be built here (the Go
module proxy refuses both), so this is the probe's logic only; Kueue's path runs for real in the e2e tier."""

from __future__ import annotations

import argparse

import pytest

from kaic.cluster import ApiResource, Obj, run_selector
from kaic.cluster.fake import FakeCluster
from kaic.errors import ConfigError
from kaic.profiles import load_profile, parse_profile
from kaic.results import Status
from steps.provision import make_config
from steps.provision.active_gang import (
    KAI,
    VOLCANO,
    PodGroupFlavor,
    PodGroupGang,
    choose,
    installed,
    member_pods,
    pod_group,
)
from steps.provision.active_platform import Clock, KueueGang
from tests.unit.test_provision_active import SETTINGS, gpu_node, two_gpu_nodes

pytestmark = pytest.mark.unit
__all__ = ["gpu_node"]  # the fixture, imported for pytest


def _clock() -> Clock:
    t = [0.0]
    return Clock(0.5, lambda: t[0], lambda s: t.__setitem__(0, t[0] + s))


def _resource(group: str, version: str, kind: str, plural: str) -> ApiResource:
    return ApiResource(group, version, kind, plural, True)


KUEUE_API = _resource("kueue.x-k8s.io", "v1beta2", "LocalQueue", "localqueues")
VOLCANO_API = _resource("scheduling.volcano.sh", "v1beta1", "PodGroup", "podgroups")
KAI_API = _resource("scheduling.run.ai", "v2alpha2", "PodGroup", "podgroups")


class Serving(FakeCluster):
    """FakeCluster whose discovery lists exactly `served` (plus the core kinds it stores)."""

    def __init__(self, nodes: list[Obj], served: list[ApiResource]) -> None:
        self.served = served
        super().__init__(nodes)

    def api_resources(self) -> list[ApiResource]:
        return [r for r in super().api_resources() if r.group in ("", "batch")] + self.served


class NoGang(FakeCluster):
    """A scheduler that ignores PodGroups: each pod is placed on its own (what a gang scheduler must not do)."""

    @staticmethod
    def _group_of(pod: Obj) -> str | None:
        return None


@pytest.mark.parametrize(("served", "order"), [
    ([KAI_API, VOLCANO_API, KUEUE_API], ["kueue", "volcano", "kai"]),
    ([KAI_API], ["kai"]),
    ([], []),
])
def test_installed_lists_the_served_schedulers_in_preference_order(served: list[ApiResource],
                                                                    order: list[str]) -> None:
    assert installed(served) == order


def test_choose_follows_the_profile_or_what_is_served(gpu_node: dict) -> None:
    nodes = two_gpu_nodes(gpu_node)
    assert isinstance(choose(Serving(nodes, [KUEUE_API, VOLCANO_API]), SETTINGS, "auto"), KueueGang)
    auto = choose(Serving(nodes, [KAI_API]), SETTINGS, "auto")
    assert isinstance(auto, PodGroupGang)
    assert auto.flavor is KAI
    assert choose(Serving(nodes, []), SETTINGS, "auto") == (
        "no gang scheduler API is served (Kueue localqueues, Volcano or KAI podgroups)")
    assert "does not serve its API" in str(choose(Serving(nodes, [KUEUE_API]), SETTINGS, "volcano"))


@pytest.mark.parametrize("flavor", [VOLCANO, KAI], ids=["volcano", "kai"])
def test_podgroup_and_members_name_each_other_and_the_scheduler(gpu_node: dict, flavor: PodGroupFlavor) -> None:
    group = pod_group("kaic-x-gang-fits", SETTINGS, 2, "gang-fits", flavor)
    pods = member_pods("kaic-x-gang-fits", SETTINGS, 2, "gang-fits", flavor)
    assert group["apiVersion"] == flavor.group_version
    assert group["spec"] == {"minMember": 2, "queue": "kaic"}
    cluster = FakeCluster([gpu_node])
    for pod in pods:
        cluster.create(pod)  # the Kubernetes schema accepts each pod
        assert pod["spec"]["schedulerName"] == flavor.scheduler_name
        assert pod["metadata"]["annotations"] == {flavor.pod_annotation: "kaic-x-gang-fits"}
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    if flavor.queue_label:
        assert {p["metadata"]["labels"][flavor.queue_label] for p in pods} == {"kaic"}


@pytest.mark.parametrize("flavor", [VOLCANO, KAI], ids=["volcano", "kai"])
def test_a_gang_scheduler_passes_and_nothing_is_left(gpu_node: dict, flavor: PodGroupFlavor) -> None:
    cluster = FakeCluster(two_gpu_nodes(gpu_node), start_after_reads=0)  # pods are listed, never read one by one
    available = 2 * int(gpu_node["status"]["allocatable"]["nvidia.com/gpu"])
    out = PodGroupGang(cluster, SETTINGS, flavor, _clock()).run(available)
    assert out.status is Status.PASSED, out.message
    assert out.message.startswith(f"{flavor.name}: a gang of 2 admitted whole")
    assert f"a gang of {available + 1} (over capacity) had no pod started" in out.message
    selector = run_selector(SETTINGS.run_id)
    assert cluster.list("v1", "pods", SETTINGS.namespace, selector) == []
    assert cluster.list(flavor.group_version, "podgroups", SETTINGS.namespace, selector) == []


def test_a_scheduler_that_starts_part_of_an_oversized_gang_fails(gpu_node: dict) -> None:
    cluster = NoGang(two_gpu_nodes(gpu_node), start_after_reads=0)
    available = 2 * int(gpu_node["status"]["allocatable"]["nvidia.com/gpu"])
    out = PodGroupGang(cluster, SETTINGS, VOLCANO, _clock()).run(available)
    assert out.status is Status.FAILED
    assert "not all-or-nothing" in out.message


def test_volcano_has_a_default_queue_kai_needs_one() -> None:
    args = argparse.Namespace(cluster_snapshot=None, kubeconfig=None, context=None, no_active=False)
    data = load_profile("eks").model_dump()
    data["probes"].update(gang_queue=None, gang_scheduler="volcano")
    assert make_config(args, parse_profile(data, "test")).gang_scheduler == "volcano"  # its `default` queue
    data["probes"]["gang_scheduler"] = "kai"
    with pytest.raises(ConfigError, match="gang_queue"):
        make_config(args, parse_profile(data, "test"))
