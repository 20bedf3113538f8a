"""Cluster teardown against a recording fake of the cluster seam: labelled objects go, a refused
deletion is a failed check, leftovers past the deadline fail, and accelerator capacity is compared with
what provision recorded (real Node objects from ../shared/fixtures)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from kaic.cluster import RUN_ID_LABEL, ApiResource, ClusterError, Obj, labelled, split_group_version
from steps.teardown import capacity, cluster
from steps.teardown.kinds import CREATED_KINDS
from tests.conftest import shared_path

pytestmark = pytest.mark.unit

RUN, OTHER = "kaic-run-a", "kaic-run-b"


class FakeCluster:
    """Objects kept per (group_version, plural); label selectors of the form k=v; scripted refusals."""

    def __init__(
        self, served: list[tuple[str, str]], refuse: set[str] | None = None, sticky: set[str] | None = None
    ) -> None:
        self.served = served
        self.objects: dict[tuple[str, str], list[Obj]] = {k: [] for k in served}
        self.refuse = refuse or set()  # plurals whose deletions the API refuses (403)
        self.sticky = sticky or set()  # plurals whose deletions are accepted but never finish (finalizer)
        self.calls: list[tuple[str, str, str | None]] = []

    def add(self, gv: str, plural: str, obj: Obj) -> None:
        self.objects[(gv, plural)].append(copy.deepcopy(obj))

    def version(self) -> dict[str, Any]:
        return {"major": "1", "minor": "35"}

    def api_resources(self) -> list[ApiResource]:
        out = []
        for gv, plural in self.served:
            group, version = split_group_version(gv)
            out.append(ApiResource(group, version, plural.title(), plural, plural != "nodes"))
        return out

    def list(
        self, group_version: str, plural: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Obj]:
        key, _, value = (label_selector or "").partition("=")
        return [
            copy.deepcopy(o)
            for o in self.objects.get((group_version, plural), [])
            if (namespace is None or o["metadata"].get("namespace") == namespace)
            and (not key or o["metadata"].get("labels", {}).get(key) == value)
        ]

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        return next((o for o in self.list(group_version, plural, namespace) if o["metadata"]["name"] == name), None)

    def create(self, obj: Obj) -> Obj:
        raise NotImplementedError

    apply = create

    def delete(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> None:
        self.calls.append(("delete", plural, name))
        if plural in self.refuse:
            raise ClusterError(f"{plural} {name} is forbidden", 403)
        if plural not in self.sticky:
            self.objects[(group_version, plural)] = [
                o
                for o in self.objects[(group_version, plural)]
                if not (o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace)
            ]

    def delete_collection(self, group_version: str, plural: str, namespace: str | None, label_selector: str) -> None:
        self.calls.append(("deletecollection", plural, namespace))
        if plural in self.refuse:
            raise ClusterError(f"deletecollection {plural} is forbidden", 403)
        if plural in self.sticky:
            return
        doomed = {
            id(o)
            for o in self.objects[(group_version, plural)]
            if o["metadata"].get("namespace") == namespace
            and o in self.list(group_version, plural, namespace, label_selector)
        }
        self.objects[(group_version, plural)] = [
            o for o in self.objects[(group_version, plural)] if id(o) not in doomed
        ]

    def pod_logs(self, name: str, namespace: str) -> str:
        return ""


def _obj(kind: str, name: str, ns: str, run: str) -> Obj:
    return labelled({"kind": kind, "metadata": {"name": name, "namespace": ns}}, run)


def _populated(**kw: Any) -> FakeCluster:
    served = [k for k in CREATED_KINDS if k[1] != "pytorchjobs"]  # one kind not served: skipped, not an error
    fake = FakeCluster(served, **kw)
    fake.add("serving.kserve.io/v1beta1", "inferenceservices", _obj("InferenceService", "digits-a", "kaic", RUN))
    fake.add("gateway.networking.k8s.io/v1", "httproutes", _obj("HTTPRoute", "digits-a-route", "kaic", RUN))
    fake.add("batch/v1", "jobs", _obj("Job", "train-0", "kaic", RUN))
    fake.add("v1", "pods", _obj("Pod", "probe-gpu", "kaic-probes", RUN))
    fake.add("v1", "pods", _obj("Pod", "other-run", "kaic", OTHER))
    fake.add("v1", "services", _obj("Service", "digits-a-split", "kaic", RUN))
    return fake


def _no_wait() -> dict[str, Any]:
    t = [0.0]

    def clock() -> float:
        return t[0]

    def sleep(s: float) -> None:
        t[0] += s

    return {"clock": clock, "sleep": sleep}


def test_every_labelled_object_is_deleted_and_nothing_else() -> None:
    fake = _populated()
    result = cluster.sweep(fake, RUN, deadline_s=10, **_no_wait())
    assert result.failures == []
    assert result.left == []
    assert result.deleted == 5
    assert [o["metadata"]["name"] for o in fake.list("v1", "pods")] == ["other-run"]  # another run's pod stays
    assert ("deletecollection", "pods", "kaic-probes") in fake.calls  # every namespace the run used
    assert ("kubeflow.org/v1", "pytorchjobs") not in result.kinds
    order = [p for verb, p, _ in fake.calls if verb == "deletecollection"]
    assert order.index("inferenceservices") < order.index("services") < order.index("pods")


def test_teardown_twice_is_fine() -> None:
    fake = _populated()
    cluster.sweep(fake, RUN, deadline_s=10, **_no_wait())
    again = cluster.sweep(fake, RUN, deadline_s=10, **_no_wait())
    assert again.deleted == 0
    assert again.failures == []
    assert again.left == []


def test_a_refused_deletion_is_a_failure_naming_the_object() -> None:
    fake = _populated(refuse={"jobs"})
    result = cluster.sweep(fake, RUN, deadline_s=5, **_no_wait())
    assert any("deletecollection jobs" in f for f in result.failures)
    assert any("delete jobs/kaic/train-0" in f and "forbidden" in f for f in result.failures)
    assert result.left == ["jobs/kaic/train-0"]


def test_an_object_that_never_goes_fails_at_the_deadline() -> None:
    fake = _populated(sticky={"inferenceservices"})
    result = cluster.sweep(fake, RUN, deadline_s=5, poll_s=1, **_no_wait())
    assert result.failures == []
    assert result.left == ["inferenceservices/kaic/digits-a"]
    assert result.elapsed_s >= 5


def _t4_node() -> Obj:
    path = shared_path("fixtures", "k8s", "nodes", "node_gce-kubeadm_2x-tesla-t4_mig-strategy-mixed_runai.yaml")
    node: Obj = yaml.safe_load(path.read_text())
    return node


def _gpu_pod(name: str, node: str, phase: str = "Running", gpus: str = "1") -> Obj:
    return labelled(
        {
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "kaic"},
            "spec": {
                "nodeName": node,
                "containers": [
                    {
                        "name": "c",
                        "resources": {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}},
                    }
                ],
            },
            "status": {"phase": phase},
        },
        RUN,
    )


def test_free_accelerators_from_real_node_minus_the_runs_running_pods() -> None:
    node = _t4_node()
    name = node["metadata"]["name"]
    assert capacity.free_on_cluster([node], []) == {"nvidia.com/gpu": 2.0}
    pods = [_gpu_pod("a", name), _gpu_pod("done", name, phase="Succeeded"), _gpu_pod("pending", "")]
    assert capacity.free_on_cluster([node], pods) == {"nvidia.com/gpu": 1.0}


def test_capacity_waits_until_the_run_pod_is_gone() -> None:
    node = _t4_node()
    fake = FakeCluster([("v1", "nodes"), ("v1", "pods")])
    fake.add("v1", "nodes", node)
    fake.add("v1", "pods", _gpu_pod("predictor", node["metadata"]["name"]))
    timing = _no_wait()
    missing, _ = capacity.wait_cluster(fake, RUN, {"nvidia.com/gpu": 2.0}, deadline_s=4, poll_s=1, **timing)
    assert missing == {"nvidia.com/gpu": (2.0, 1.0)}
    fake.objects[("v1", "pods")].clear()
    missing, waited = capacity.wait_cluster(fake, RUN, {"nvidia.com/gpu": 2.0}, deadline_s=4, poll_s=1, **timing)
    assert missing == {}
    assert waited == 0


@pytest.mark.parametrize(
    ("fp", "want"),
    [
        ({"allocatable": {"nvidia.com/gpu": 8}}, {"nvidia.com/gpu": 8.0}),
        ({"allocatable": {"amd.com/gpu": 4, "nvidia.com/mig-1g.10gb": 7}},
         {"amd.com/gpu": 4.0, "nvidia.com/mig-1g.10gb": 7.0}),
        ({"allocatable": {}}, {}),  # what provision writes on a machine without accelerators
        ({"allocatable": {"nvidia.com/gpu": "8"}}, None),
        ({"cluster": "x"}, None),
    ],
)
def test_expected_capacity_from_fingerprint(fp: dict[str, Any], want: dict[str, float] | None) -> None:
    assert capacity.expected(fp) == want


def test_labels_are_what_teardown_selects_on() -> None:
    assert _obj("Pod", "p", "ns", RUN)["metadata"]["labels"] == {RUN_ID_LABEL: RUN}


def _ctx(tmp_path: Any, profile: str = "eks") -> Any:
    from datetime import UTC, datetime

    from kaic.profiles import load_profile
    from kaic.results import RunContext
    from kaic.stepkit import StepContext
    from kaic.stores.objects import open_store

    store = open_store(f"file://{tmp_path / 'objects'}", source="test")
    return StepContext(
        RunContext(RUN, "0.1.0", datetime.now(UTC), "eks"), load_profile(profile), store, tmp_path / "home", "teardown"
    )


def test_step_rows_fail_on_a_refused_deletion_and_pass_once_clean(tmp_path: Any) -> None:
    import json

    from kaic.results import Status
    from steps.teardown import Config, teardown

    ctx = _ctx(tmp_path)
    node = _t4_node()
    ctx.store.put_bytes(
        ctx.key("provision", "fingerprint.json"), json.dumps({"allocatable": {"nvidia.com/gpu": 2}}).encode()
    )
    fake = _populated(refuse={"jobs"})
    fake.served.append(("v1", "nodes"))
    fake.objects[("v1", "nodes")] = [node]
    fake.add("v1", "pods", _gpu_pod("predictor", node["metadata"]["name"]))
    cfg = Config(deadline_s=3, reclaim_timeout_s=2, poll_s=0.01)
    deleted, reclaimed = teardown(cfg, ctx, fake)
    assert deleted.check_id == "teardown.deleted"
    assert deleted.status is Status.FAILED
    assert "forbidden" in deleted.message
    assert "jobs/kaic/train-0" in deleted.message
    assert reclaimed.status is Status.PASSED  # the predictor pod (labelled) was deleted: both GPUs free
    fake.refuse.clear()
    deleted, reclaimed = teardown(cfg, ctx, fake)
    assert deleted.status is Status.PASSED, deleted.message
    assert deleted.metric == "teardown_time_s"
    assert deleted.value is not None
    assert reclaimed.metric == "reclaim_time_s"


def test_step_skips_capacity_without_a_fingerprint(tmp_path: Any) -> None:
    from kaic.results import Status
    from steps.teardown import Config, teardown

    ctx = _ctx(tmp_path)
    _, reclaimed = teardown(Config(deadline_s=1, poll_s=0.01), ctx, _populated())
    assert reclaimed.status is Status.SKIPPED
    assert "fingerprint" in reclaimed.message
