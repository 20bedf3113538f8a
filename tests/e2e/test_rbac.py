"""RBAC against the real authorizer: the chart's steps identity (ServiceAccount, Role, ClusterRole and their
bindings, rendered by helm from charts/kaic) applied to a fresh namespace, a token minted for that
ServiceAccount with the TokenRequest API, and kaic's own client built on a kubeconfig holding only that token.

- Every call in the recorded step-call set (`kaic.deploy_check.drive.record_run`: the steps' real cluster
  code, recorded with verb, resource, namespace and name) is allowed: a SelfSubjectAccessReview per call.
- The steps' real calls go through with the token: provision's READ listings, the probe pod, the training
  Job and Service, the InferenceService and HTTPRoute, teardown's sweep.
- Calls outside the Role are refused with 403: deleting a node, reading Secrets, writing in another namespace.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import yaml

from kaic.cluster import ClusterError, Obj, run_selector
from kaic.cluster.kube import KubeCluster
from kaic.deploy_check import CHART
from kaic.deploy_check.drive import NAMESPACE, gpu_nodes, record_run
from kaic.deploy_check.rbac import ScopedCall
from tests.e2e import live

pytestmark = pytest.mark.e2e

SA = "kaic-steps"  # values.yaml steps.serviceAccount.name
RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
# What the recorded discovery calls read on the wire (kaic.cluster.kube: /version, then /api and /apis).
DISCOVERY_PATHS = {"/version": ("/version",), "/apis": ("/api", "/api/v1", "/apis", "/apis/batch/v1")}


def helm_binary() -> str | None:
    from kaic.devcluster.build import HELM

    built = HELM.path("helm")
    return str(built) if built.is_file() else shutil.which("helm")


def chart_rbac(namespace: str, release: str) -> tuple[list[Obj], str]:
    """The chart's steps identity as helm renders it (templates/steps-rbac.yaml), and how it was rendered.
    Without a helm binary, the same objects from the rule files the template embeds verbatim."""
    from kaic.devcluster.build import K8S_VERSION

    helm = helm_binary()
    if helm:
        out = subprocess.run([helm, "template", release, str(CHART), "-n", namespace,
                              "--show-only", "templates/steps-rbac.yaml",
                              # offline rendering assumes Kubernetes v1.20 (a go-installed helm has no build-time
                              # default); the chart requires >= 1.33: render for the dev cluster's version
                              "--kube-version", K8S_VERSION],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        docs = [d for d in yaml.safe_load_all(out) if d]
        return [d for d in docs if d.get("kind") in RBAC_KINDS], f"helm template ({helm})"
    rules = {n: yaml.safe_load((CHART / "files" / "rbac" / f"{n}.yaml").read_text())["rules"]
             for n in ("steps-role", "argo-executor-role", "cluster-read")}
    role, cluster_role = f"{release}-steps", f"{release}-{namespace}-cluster-read"
    subject = [{"kind": "ServiceAccount", "name": SA, "namespace": namespace}]
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA, "namespace": namespace}},
        {"apiVersion": rbac, "kind": "Role", "metadata": {"name": role, "namespace": namespace},
         "rules": rules["steps-role"] + rules["argo-executor-role"]},
        {"apiVersion": rbac, "kind": "RoleBinding", "metadata": {"name": role, "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role}, "subjects": subject},
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": cluster_role},
         "rules": rules["cluster-read"]},
        {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": cluster_role},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
         "subjects": subject},
    ], "the chart's files/rbac rules (no helm binary)"


@dataclass(frozen=True)
class Steps:
    namespace: str
    admin: KubeCluster
    client: KubeCluster  # authenticated as the steps' ServiceAccount only
    rendered_by: str


@pytest.fixture(scope="module")
def steps(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Steps]:
    admin = live.connect(kubeconfig)
    with live.namespace(admin, "kaic-rbac") as ns:
        objs, how = chart_rbac(ns, release=ns)
        assert {o["kind"] for o in objs} == RBAC_KINDS, f"{how} rendered {sorted(o['kind'] for o in objs)}"
        cluster_scoped = [o for o in objs if o["kind"].startswith("Cluster")]
        try:
            for o in objs:
                admin.create(o)
            token = live.mint_token(admin, ns, SA)
            path = live.token_kubeconfig(kubeconfig, token, tmp_path_factory.mktemp("rbac") / "steps.kubeconfig")
            yield Steps(ns, admin, live.connect(path), how)
        finally:
            for o in cluster_scoped:
                admin.delete("rbac.authorization.k8s.io/v1", o["kind"].lower() + "s", o["metadata"]["name"])


def recorded_calls(admin: KubeCluster) -> dict[str, set[ScopedCall]]:
    """Each step's calls, recorded while its real cluster code runs (on the live cluster's GPU nodes)."""
    gpu = [n for n in admin.list("v1", "nodes")
           if int(((n.get("status") or {}).get("allocatable") or {}).get("nvidia.com/gpu", "0")) > 0]
    assert gpu, "the dev cluster has no node with allocatable nvidia.com/gpu"
    return record_run(gpu_nodes(gpu[0]))


def review(steps: Steps, call: ScopedCall) -> list[str]:
    """Refusals of the authorizer for one recorded call, made as the steps' identity in the test namespace."""
    if call.resource.startswith("/"):
        results = [(p, *live.may(steps.client, call.verb, p)) for p in DISCOVERY_PATHS[call.resource]]
    else:
        ns = steps.namespace if call.namespace == NAMESPACE else call.namespace
        results = [(str(call), *live.may(steps.client, call.verb, call.resource, call.group, ns, call.name))]
    return [f"{what}: denied ({reason or 'no rule'})" for what, ok, reason in results if not ok]


def test_every_recorded_step_call_is_allowed_for_the_steps_service_account(steps: Steps) -> None:
    calls = recorded_calls(steps.admin)
    assert set(calls) == {"provision", "train", "serve", "teardown"}
    everything = set().union(*calls.values())
    assert len(everything) > 30  # the whole cluster path of four steps, not a handful
    denied = [f"{step}: {d}" for step, cs in sorted(calls.items()) for c in sorted(cs) for d in review(steps, c)]
    assert denied == [], f"rendered by {steps.rendered_by}"


def test_the_steps_real_calls_go_through_with_the_token(steps: Steps) -> None:
    from steps.provision.view import gather
    from steps.teardown import cluster as teardown

    sa, ns = steps.client, steps.namespace
    assert sa.version()["gitVersion"]
    view = gather(sa)  # provision's READ listings, cluster-wide
    refused = {k: v.note for k, v in view.listings.items() if not v.complete}
    assert refused == {}
    assert view.items("", "nodes")
    run_id = live.unique("kaic-rbac-run")
    created = []
    for obj in live.kaic_objects(ns, run_id).values():  # pods are created, the rest server-side applied
        out = sa.create(obj) if obj["kind"] == "Pod" else sa.apply(obj)
        created.append(f"{out['kind']} {out['metadata']['name']}")
        assert steps.admin.get(obj["apiVersion"], live.plural(sa, obj), obj["metadata"]["name"], ns) is not None
    assert sa.list("v1", "pods", ns, run_selector(run_id))
    swept = teardown.sweep(sa, run_id, deadline_s=live.DEADLINE_S, poll_s=0.5)
    assert swept.failures == []
    assert swept.left == []
    assert swept.deleted >= len(created)


@pytest.mark.parametrize(("verb", "resource", "group", "where", "name"), [
    ("delete", "nodes", "", None, "kaic-no-such-node"),
    ("list", "secrets", "", None, None),
    ("list", "secrets", "", "own", None),
    ("create", "configmaps", "", "own", None),
    ("create", "pods", "", "default", None),
    ("delete", "namespaces", "", None, "kube-system"),
    ("create", "clusterroles", "rbac.authorization.k8s.io", None, None),
])
def test_a_call_outside_the_role_is_denied_with_403(steps: Steps, verb: str, resource: str, group: str,
                                                     where: str | None, name: str | None) -> None:
    sa = steps.client
    ns = steps.namespace if where == "own" else where
    allowed, _ = live.may(sa, verb, resource, group, ns, name)
    assert not allowed
    gv = f"{group}/v1" if group else "v1"
    kind = {"configmaps": "ConfigMap", "pods": "Pod", "clusterroles": "ClusterRole"}.get(resource, "")
    obj: Obj = {"apiVersion": gv, "kind": kind, "metadata": {"name": live.unique("kaic-denied")}}
    if ns:
        obj["metadata"]["namespace"] = ns
    if kind == "Pod":
        obj["spec"] = {"containers": [{"name": "c", "image": "busybox"}]}
    attempt: dict[str, Callable[[], object]] = {
        "delete": lambda: sa.delete(gv, resource, str(name), ns),  # the authorizer answers before any lookup
        "list": lambda: sa.list(gv, resource, ns),
        "create": lambda: sa.create(obj),
    }
    with pytest.raises(ClusterError) as refused:
        attempt[verb]()
    assert refused.value.status == 403, str(refused.value)
    assert "forbidden" in str(refused.value).lower()


def test_the_token_is_the_service_account_and_nothing_more(steps: Steps) -> None:
    status, doc = live.call(steps.client, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert status == 201, doc
    user = doc["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{steps.namespace}:{SA}"
    assert "system:masters" not in user.get("groups", [])
