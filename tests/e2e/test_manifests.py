"""Everything kaic creates on a cluster, from kaic's own builders, is accepted by the real API server in a
namespace that enforces the `restricted` Pod Security level (probe pods, the Gateway routing probe's backend
and its HTTPRoute, the training Service and Indexed Job, whose pods the Job controller must get admitted too,
the InferenceService against KServe's CRD and its HTTPRoute against Gateway API's CRDs), and broken variants
are refused: by Pod Security admission (403) or by the API's validation (422: built-in types, CRD schemas and
CEL rules)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import pytest

from kaic.cluster import RUN_ID_LABEL, ClusterError, Obj, wait_until
from kaic.cluster.kube import KubeCluster
from tests.e2e import live

pytestmark = pytest.mark.e2e

RUN_ID = "kaic-e2e-manifests"
KINDS = ("probe Pod", "no-request probe Pod", "gang probe Job", "gateway probe backend Pod",
         "gateway probe backend Service", "gateway probe HTTPRoute", "training headless Service",
         "training Indexed Job", "InferenceService", "HTTPRoute")


@pytest.fixture(scope="module")
def restricted(kubeconfig: str) -> Iterator[tuple[KubeCluster, str]]:
    admin = live.connect(kubeconfig)
    with live.namespace(admin, "kaic-pss") as ns:
        live.service_account(admin, ns, "kaic-steps")  # the chart's; the Job's pods run as it
        yield admin, ns


def test_every_kind_kaic_creates_is_covered() -> None:
    assert tuple(live.kaic_objects("ns", RUN_ID)) == KINDS


@pytest.mark.parametrize("what", KINDS)
def test_kaic_object_is_accepted_under_restricted_pod_security(restricted: tuple[KubeCluster, str],
                                                               what: str) -> None:
    admin, ns = restricted
    obj = live.kaic_objects(ns, RUN_ID)[what]
    stored = admin.create(obj)
    assert stored["metadata"]["uid"]
    assert stored["metadata"]["labels"][RUN_ID_LABEL] == RUN_ID
    assert live.dropped(obj, stored) == []  # nothing pruned (a CRD schema drops fields it does not know)
    if obj["kind"] == "Job" and not obj["spec"].get("suspend"):  # the pods are what Pod Security judges
        sel = f"job-name={obj['metadata']['name']}"
        pods = wait_until(lambda: (lambda p: p if len(p) == obj["spec"]["completions"] else None)(
            admin.list("v1", "pods", ns, sel)), live.DEADLINE_S, f"the Job controller's pods ({sel})", 0.5)
        assert {p["metadata"]["labels"][RUN_ID_LABEL] for p in pods} == {RUN_ID}


def _privileged(pod: Obj) -> Obj:
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    return pod


def _no_seccomp(pod: Obj) -> Obj:
    del pod["spec"]["securityContext"]["seccompProfile"]
    return pod


def _indexed_without_completions(job: Obj) -> Obj:
    del job["spec"]["completions"]
    return job


def _replicas_not_a_number(isvc: Obj) -> Obj:
    isvc["spec"]["predictor"]["minReplicas"] = "one"
    return isvc


def _weight_out_of_range(route: Obj) -> Obj:
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001
    return route


def _unknown_header_match(route: Obj) -> Obj:
    route["spec"]["rules"][0]["matches"][0]["headers"][0]["type"] = "Contains"
    return route


def _port_out_of_range(svc: Obj) -> Obj:
    svc["spec"]["ports"][0]["port"] = 70000
    return svc


BROKEN: dict[str, tuple[str, Callable[[Obj], Obj], int, str]] = {
    "privileged probe pod": ("probe Pod", _privileged, 403, "violates PodSecurity"),
    "probe pod without a seccomp profile": ("probe Pod", _no_seccomp, 403, "seccompProfile"),
    "Indexed Job without completions": ("training Indexed Job", _indexed_without_completions, 422, "completions"),
    "InferenceService with a string for minReplicas": ("InferenceService", _replicas_not_a_number, 422,
                                                       "minReplicas"),
    "HTTPRoute weight above 1000000": ("HTTPRoute", _weight_out_of_range, 422, "weight"),
    "HTTPRoute header match of an unknown type": ("gateway probe HTTPRoute", _unknown_header_match, 422, "type"),
    "Service port above 65535": ("training headless Service", _port_out_of_range, 422, "port"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_manifest_is_refused(restricted: tuple[KubeCluster, str], case: str) -> None:
    admin, ns = restricted
    what, breaks, status, says = BROKEN[case]
    obj = breaks(copy.deepcopy(live.kaic_objects(ns, RUN_ID)[what]))
    obj["metadata"]["name"] = live.unique("kaic-broken")
    with pytest.raises(ClusterError) as refused:
        admin.create(obj)
    assert refused.value.status == status, str(refused.value)
    assert says in str(refused.value)
    assert admin.get(obj["apiVersion"], live.plural(admin, obj), obj["metadata"]["name"], ns) is None


def test_a_job_whose_pods_break_pod_security_gets_no_pod(restricted: tuple[KubeCluster, str]) -> None:
    """Pod Security only warns on a Job; it is the Job controller's pods that are refused."""
    admin, ns = restricted
    job = copy.deepcopy(live.kaic_objects(ns, RUN_ID)["training Indexed Job"])
    job["metadata"]["name"] = name = live.unique("kaic-privileged")
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    admin.create(job)

    def refused() -> list[str] | None:
        events = admin.list("v1", "events", ns)
        msgs = [str(e.get("message", "")) for e in events
                if (e.get("involvedObject") or {}).get("name") == name and e.get("reason") == "FailedCreate"]
        return msgs or None

    messages = wait_until(refused, live.DEADLINE_S, f"a FailedCreate event of Job {ns}/{name}", 0.5)
    assert any("violates PodSecurity" in m for m in messages), messages
    assert admin.list("v1", "pods", ns, f"job-name={name}") == []
