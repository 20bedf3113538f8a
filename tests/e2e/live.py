"""Helpers for e2e tests against the live control plane (`make cluster`): an admin client, throw-away
namespaces labelled for Pod Security, ServiceAccount tokens (TokenRequest), access reviews, and polling
with a deadline. Everything goes through kaic's own `KubeCluster`, so the tests exercise kaic's client too.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from kaic.cluster import ClusterError, Obj, plural_for, wait_until
from kaic.cluster.kube import AGGREGATED, KubeCluster, resource_path
from kaic.profiles import Profile, load_profile

PSS_LABELS = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
DEADLINE_S = 60.0  # for anything the controllers do (not a timed assertion: a bound on waiting)


def connect(kubeconfig: str | Path) -> KubeCluster:
    return KubeCluster.connect(kubeconfig=str(kubeconfig))


def call(client: KubeCluster, method: str, path: str, body: Any = None,
         query: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """One raw API call through kaic's client: (HTTP status, decoded JSON body)."""
    status, data = client.request(method, path, query=query, body=body)
    try:
        doc = json.loads(data) if data else {}
    except ValueError:
        doc = {"message": data[:300].decode(errors="replace")}
    return status, doc if isinstance(doc, dict) else {}


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@contextmanager
def namespace(client: KubeCluster, prefix: str, restricted: bool = True) -> Iterator[str]:
    """A fresh namespace (Pod Security `restricted` enforced, warned and audited unless told otherwise),
    ready for pods (its `default` ServiceAccount exists); deleted on the way out."""
    name = unique(prefix)
    client.create({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "labels": dict(PSS_LABELS) if restricted else {}}})
    try:
        wait_until(lambda: client.get("v1", "serviceaccounts", "default", name), DEADLINE_S,
                   f"ServiceAccount {name}/default (serviceaccount controller)", 0.2)
        yield name
    finally:
        client.delete("v1", "namespaces", name)


def service_account(client: KubeCluster, ns: str, name: str) -> None:
    client.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}})


def mint_token(client: KubeCluster, ns: str, sa: str, seconds: int = 600) -> str:
    """A bound token for ServiceAccount ns/sa from the TokenRequest API."""
    path = resource_path("v1", "serviceaccounts", ns, sa, "token")
    status, doc = call(client, "POST", path, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                              "spec": {"expirationSeconds": seconds}})
    if status != 201:
        raise ClusterError(f"TokenRequest for {ns}/{sa}: HTTP {status}: {doc.get('message')}", status)
    return str(doc["status"]["token"])


def token_kubeconfig(admin_kubeconfig: str | Path, token: str, out: Path) -> Path:
    """A kubeconfig for the same API server (its CA) that authenticates with `token` only."""
    cfg = yaml.safe_load(Path(admin_kubeconfig).read_text())
    ctx_name = cfg.get("current-context") or cfg["contexts"][0]["name"]
    ctx = next(c for c in cfg["contexts"] if c["name"] == ctx_name)["context"]
    cluster = next(c for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    out.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [cluster],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": "sa"}}],
    }))
    out.chmod(0o600)
    return out


def may(client: KubeCluster, verb: str, resource: str, group: str = "", namespace: str | None = None,
        name: str | None = None) -> tuple[bool, str]:
    """SelfSubjectAccessReview: may the client's own identity do this? (allowed, the authorizer's reason).
    `resource` may name a subresource ("pods/log"); a resource starting with "/" is a non-resource URL."""
    if resource.startswith("/"):
        spec: dict[str, Any] = {"nonResourceAttributes": {"path": resource, "verb": verb}}
    else:
        plural, _, sub = resource.partition("/")
        attrs = {"verb": verb, "group": group, "resource": plural, "subresource": sub,
                 "namespace": namespace or "", "name": name or ""}
        spec = {"resourceAttributes": {k: v for k, v in attrs.items() if v}}
    status, doc = call(client, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                       {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec})
    if status != 201:
        raise ClusterError(f"SelfSubjectAccessReview: HTTP {status}: {doc.get('message')}", status)
    st = doc.get("status") or {}
    return bool(st.get("allowed")), str(st.get("reason") or st.get("evaluationError") or "")


def labelled_objects(client: KubeCluster, selector: str, kinds: list[tuple[str, str]]) -> list[str]:
    """'plural ns/name' of every object matching `selector` across `kinds`, in every namespace."""
    out = []
    for gv, plural in kinds:
        for o in client.list(gv, plural, None, selector):
            meta = o.get("metadata") or {}
            out.append(f"{plural} {meta.get('namespace', '')}/{meta.get('name')}")
    return out


def listable(client: KubeCluster) -> list[tuple[str, str]]:
    """(group_version, plural) of every resource the API server serves with the `list` verb (aggregated
    discovery; events left out: they are records about objects, and expire on their own)."""
    out = set()
    for root in ("/api", "/apis"):
        status, data = client.request("GET", root, accept=AGGREGATED)
        assert status == 200, f"GET {root}: HTTP {status}"
        for group in json.loads(data).get("items") or []:
            name = (group.get("metadata") or {}).get("name", "")
            for v in group.get("versions") or []:
                gv = f"{name}/{v['version']}" if name else v["version"]
                out |= {(gv, r["resource"]) for r in v.get("resources") or []
                        if "list" in (r.get("verbs") or []) and r["resource"] != "events"}
    return sorted(out)


def plural(client: KubeCluster, obj: Obj) -> str:
    return plural_for(client.api_resources(), str(obj["apiVersion"]), str(obj["kind"]))


PROFILE = "generic"  # any cluster with nvidia.com/gpu through the device plugin; no node selector
GATEWAY = "gateway-system/inference"


def profile(ns: str) -> Profile:
    """kaic's generic cluster profile, in namespace `ns`."""
    p = load_profile(PROFILE)
    return p.model_copy(update={"kubernetes": p.kubernetes.model_copy(update={"namespace": ns})})


def kaic_objects(ns: str, run_id: str) -> dict[str, Obj]:
    """{what: object} for everything the steps create on a cluster, from kaic's own builders: the probe
    pods (accelerator, no-request), the Kueue gang Job, the Gateway routing probe's backend Pod, Service and
    HTTPRoute, the training Service and Indexed Job, the InferenceService and its HTTPRoute."""
    from steps.provision.active import PodSettings, probe_pod
    from steps.provision.active_gateway import backend_pod, backend_service, backends, routing_route
    from steps.provision.active_platform import gang_job
    from steps.serve import isvc
    from steps.train import cluster as train
    from steps.train.spec import WorkerSpec

    p = profile(ns)
    s = PodSettings(ns, p.image, run_id, p.accelerator.resource_name, dict(p.accelerator.node_selector),
                    tuple(t.model_dump(exclude_none=True) for t in p.accelerator.tolerations), gang_queue="kaic")
    spec = WorkerSpec("s3://kaic/objects", f"runs/{run_id}/data/digits.parquet", f"runs/{run_id}/train/torch.json",
                      accelerators_per_worker=p.accelerator.per_worker)
    name = isvc.isvc_name(run_id)
    model = isvc.IsvcSpec(name, ns, run_id, "digits", f"s3://kaic/objects/runs/{run_id}/model", p.image)
    return {
        "probe Pod": probe_pod("kaic-probe-accel", s, 1, probe="accel"),
        "no-request probe Pod": probe_pod("kaic-probe-nodev", s, 0, 30, probe="nodev"),
        "gang probe Job": gang_job("kaic-probe-gang-fits", s, 2, "gang-fits"),
        "gateway probe backend Pod": backend_pod(backends(run_id).a, "a", backends(run_id).port_a, s),
        "gateway probe backend Service": backend_service(backends(run_id).a, "a", backends(run_id).port_a, s),
        "gateway probe HTTPRoute": routing_route(backends(run_id), GATEWAY, s),
        "training headless Service": train.headless_service(run_id, "torch", p),
        "training Indexed Job": train.indexed_job(run_id, "torch", p, spec, p.training.world_size, 600),
        "InferenceService": isvc.build_inference_service(model, p),
        "HTTPRoute": isvc.build_http_route(name, ns, run_id, GATEWAY, "digits"),
    }


def dropped(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Paths of what was sent but is not stored as sent (the server may add defaults, never remove)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [path or "."]
        return [p for k, v in sent.items() for p in dropped(v, stored.get(k), f"{path}.{k}")]
    if isinstance(sent, list):  # each element kept (admission may add more, e.g. default tolerations)
        if not isinstance(stored, list):
            return [path]
        return [f"{path}[{i}]" for i, v in enumerate(sent) if not any(dropped(v, s) == [] for s in stored)]
    return [] if sent == stored else [f"{path}: sent {sent!r}, stored {stored!r}"]
