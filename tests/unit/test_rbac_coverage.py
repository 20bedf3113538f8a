"""The chart's RBAC against what the steps really call: each step's cluster code runs on FakeCluster (plus
the visible effects of the platform's controllers, kaic.deploy_check.drive.RunCluster) wrapped in a recorder
that keeps every call's verb, resource, namespace and name. The steps' Role must grant every call in the kaic
namespace, the cluster-read ClusterRole every other call, and neither may grant anything no call needs."""

from __future__ import annotations

import functools
import json

import pytest

from kaic.cluster import record_calls
from kaic.deploy_check import CHART
from kaic.deploy_check.drive import NAMESPACE, RunCluster, gpu_nodes, record_run
from kaic.deploy_check.rbac import ScopedCall, ScopedRecorder, coverage, granted, load_rules
from tests.conftest import shared_path

pytestmark = pytest.mark.unit

ROLE = load_rules(CHART / "files" / "rbac" / "steps-role.yaml")
CLUSTER = load_rules(CHART / "files" / "rbac" / "cluster-read.yaml")


@functools.cache
def _nodes() -> tuple[dict, ...]:
    path = shared_path("fixtures", "k8s", "nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")
    return tuple(gpu_nodes(json.loads(path.read_text())["items"][0]))


@functools.cache
def _calls() -> dict[str, frozenset[ScopedCall]]:
    return {step: frozenset(calls) for step, calls in record_run(list(_nodes())).items()}


def _all() -> set[ScopedCall]:
    return set().union(*_calls().values())


def test_every_step_ran_its_cluster_path() -> None:
    calls = _calls()
    assert set(calls) == {"provision", "train", "serve", "teardown"}
    have = {step: {(c.verb, c.resource) for c in cs} for step, cs in calls.items()}
    assert {("list", "nodes"), ("list", "resourceslices"), ("create", "pods"), ("get", "pods/log"),
            ("get", "pods/proxy"), ("deletecollection", "pods"), ("create", "deployments"),
            ("create", "horizontalpodautoscalers"), ("deletecollection", "replicasets")} <= have["provision"]
    assert {("patch", "jobs"), ("create", "trainjobs"), ("delete", "pods"), ("deletecollection", "jobs")} \
        <= have["train"]
    assert {("patch", "inferenceservices"), ("get", "gateways"), ("patch", "httproutes")} <= have["serve"]
    assert {("list", "inferenceservices"), ("deletecollection", "inferenceservices"), ("deletecollection", "pods"),
            ("deletecollection", "trainjobs")} <= have["teardown"]


def test_the_chart_grants_every_call_and_nothing_more() -> None:
    cov = coverage(_all(), ROLE, CLUSTER, NAMESPACE)
    assert cov.problems() == []


def test_writes_stay_in_the_kaic_namespace() -> None:
    writes = [c for c in _all() if c.verb in ("create", "patch", "update", "delete", "deletecollection")]
    assert writes
    assert all(c.namespace == NAMESPACE for c in writes)
    assert {v for rule in CLUSTER for v in rule["verbs"]} == {"get", "list"}  # the ClusterRole only reads


def test_no_secret_is_readable() -> None:
    for rules in (ROLE, CLUSTER):
        for ns in (NAMESPACE, None):
            for verb in ("get", "list"):
                assert not granted(rules, ScopedCall(verb, "", "secrets", ns, "any"))


def test_a_call_the_role_does_not_grant_is_reported() -> None:
    extra = ScopedCall("create", "", "configmaps", NAMESPACE)
    cov = coverage(_all() | {extra}, ROLE, CLUSTER, NAMESPACE)
    assert cov.missing_role == [extra]
    assert cov.problems() == ["Role does not grant: create configmaps in kaic"]


def test_a_cross_namespace_call_needs_the_cluster_role() -> None:
    extra = ScopedCall("get", "", "configmaps", "kube-system", "kubeadm-config")  # not the autoscaler's status
    cov = coverage(_all() | {extra}, ROLE, CLUSTER, NAMESPACE)
    assert cov.missing_cluster == [extra]
    assert cov.missing_role == []


def test_a_rule_no_call_needs_is_reported() -> None:
    role = [*ROLE, {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["create", "watch"]}]
    cov = coverage(_all(), role, CLUSTER, NAMESPACE)
    assert cov.unused_role == ["create statefulsets.apps", "watch statefulsets.apps"]
    cluster = [*CLUSTER, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]
    assert coverage(_all(), ROLE, cluster, NAMESPACE).unused_cluster == ["list secrets"]


def test_a_step_calling_a_new_api_fails_the_check() -> None:
    """A step that starts calling an API the Role lacks is caught through the same recorder."""
    rec = ScopedRecorder(RunCluster(list(_nodes())))
    rec.list("v1", "persistentvolumeclaims", NAMESPACE)  # e.g. a step starts reading its PVCs
    cov = coverage(_all() | rec.scoped, ROLE, CLUSTER, NAMESPACE)
    assert [str(c) for c in cov.missing_role] == ["list persistentvolumeclaims in kaic"]


def test_scoped_recorder_agrees_with_recording_cluster() -> None:
    cluster = RunCluster(list(_nodes()))
    plain, scoped = record_calls(cluster), ScopedRecorder(cluster)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": NAMESPACE},
           "spec": {"containers": [{"name": "c", "image": "x"}]}}
    for client in (plain, scoped):
        client.apply(pod if client is plain else {**pod, "metadata": {"name": "q", "namespace": NAMESPACE}})
        client.list("v1", "nodes")
        client.delete_collection("v1", "pods", NAMESPACE, "a=b")
    assert scoped.rbac_rules() == plain.rbac_rules() == {
        ("", "pods"): {"patch", "create", "deletecollection"}, ("", "nodes"): {"list"}}
    assert ScopedCall("list", "", "nodes", None) in scoped.scoped
