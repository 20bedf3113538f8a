"""The ClusterClient seam: labelling, deadlines, RBAC call recording, and that every implementation
satisfies the same Protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaic.cluster import (
    RUN_ID_LABEL,
    ClusterClient,
    DeadlineExceeded,
    ReadOnlyClusterError,
    labelled,
    plural_for,
    record_calls,
    wait_until,
)
from kaic.cluster.fake import FakeCluster
from kaic.cluster.kube import KubeCluster, resource_path
from kaic.cluster.snapshot import SnapshotCluster

pytestmark = pytest.mark.unit

NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {}},
        "status": {"allocatable": {"nvidia.com/gpu": "2", "cpu": "8"}}}


def test_labelled_copies_and_labels_the_pod_template() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "spec": {"template": {"spec": {"containers": []}}}}
    out = labelled(job, "run-1")
    assert out["metadata"]["labels"][RUN_ID_LABEL] == "run-1"
    assert out["spec"]["template"]["metadata"]["labels"][RUN_ID_LABEL] == "run-1"
    assert "labels" not in job["metadata"]  # the input is untouched


def test_wait_until_returns_the_value_or_names_what_it_waited_for() -> None:
    t = [0.0]
    calls = iter([None, False, "ok"])
    def tick(s: float) -> None:
        t[0] += s

    assert wait_until(lambda: next(calls), 10, "x", 1, clock=lambda: t[0], sleep=tick) == "ok"
    with pytest.raises(DeadlineExceeded, match="waiting for the pod to run"):
        wait_until(lambda: None, 3, "the pod to run", 1, clock=lambda: t[0], sleep=tick)


def test_plural_guess_and_discovery() -> None:
    assert plural_for([], "networking.k8s.io/v1", "NetworkPolicy") == "networkpolicies"
    assert plural_for([], "v1", "Pod") == "pods"
    assert resource_path("v1", "pods", "kaic", "p", "log") == "/api/v1/namespaces/kaic/pods/p/log"
    assert resource_path("resource.k8s.io/v1", "deviceclasses") == "/apis/resource.k8s.io/v1/deviceclasses"


def test_every_implementation_satisfies_the_protocol(tmp_path: Path) -> None:
    from kubernetes import client

    assert isinstance(FakeCluster([NODE]), ClusterClient)
    assert isinstance(SnapshotCluster(tmp_path), ClusterClient)
    assert isinstance(KubeCluster(client.ApiClient(client.Configuration(host="http://127.0.0.1:1"))), ClusterClient)
    assert isinstance(record_calls(FakeCluster([NODE])), ClusterClient)


def test_recording_cluster_yields_the_rbac_rules_a_role_must_grant() -> None:
    rec = record_calls(FakeCluster([NODE]))
    pod = labelled({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "kaic"},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, "r")
    rec.create(pod)
    rec.get("v1", "pods", "p", "kaic")
    rec.pod_logs("p", "kaic")
    rec.delete_collection("v1", "pods", "kaic", f"{RUN_ID_LABEL}=r")
    rec.list("apps/v1", "daemonsets")
    rec.version()
    assert rec.rbac_rules() == {("", "pods"): {"create", "get", "deletecollection"},
                                ("", "pods/log"): {"get"}, ("apps", "daemonsets"): {"list"}}


def test_snapshot_writes_raise(tmp_path: Path) -> None:
    snap = SnapshotCluster(tmp_path)
    with pytest.raises(ReadOnlyClusterError, match="read-only"):
        snap.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}})
    with pytest.raises(ReadOnlyClusterError):
        snap.delete_collection("v1", "pods", "kaic", "a=b")
