"""Pure builders for what the serve step creates on a cluster: the InferenceService, and (where the profile
names a Gateway) an HTTPRoute to its predictor; the Gateway helpers the provision step's routing probe shares.

Why a custom predictor container rather than KServe's `pytorch` or `triton` runtimes: the `pytorch`
runtime is TorchServe, which wants a `.mar` archive and its own handler; Triton wants a model repository
(`digits/1/model.pt` + `config.pbtxt`), names tensors `INPUT__0`/`OUTPUT__0` and is a multi-GB image.
kaic's own image already holds KServe's ModelServer and `steps.serve.model_server`, so the cluster
serves exactly the code the local path serves (same V2 tensors, same parity, same `/metrics`), and
needs no ServingRuntime. KServe's storage initializer still fetches the model: it runs for a custom
container that sets `STORAGE_URI`, and fills `/mnt/models` from s3:// (or gs://, https://...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kaic.cluster import RUN_ID_LABEL, Obj, condition_true, labelled
from kaic.podsecurity import container_security, pod_security
from kaic.profiles import Profile

ISVC_GROUP_VERSION = "serving.kserve.io/v1beta1"
ISVC_PLURAL = "inferenceservices"
ROUTE_GROUP_VERSION = "gateway.networking.k8s.io/v1"
ROUTE_PLURAL = "httproutes"
MODEL_MOUNT = "/mnt/models"  # where KServe's storage initializer puts the model
PORT = 8080


def isvc_name(run_id: str, model: str = "digits") -> str:
    """A DNS-1035 name from the run id, short enough for KServe's derived names (`<name>-predictor-...`)."""
    raw = re.sub(r"[^a-z0-9-]+", "-", f"{model}-{run_id}".lower()).strip("-")
    name = raw[:40].rstrip("-")
    return name if name[:1].isalpha() else f"m-{name}"[:40].rstrip("-")


@dataclass(frozen=True)
class IsvcSpec:
    name: str
    namespace: str
    run_id: str
    model: str
    storage_uri: str  # directory holding model.pt and model.json
    image: str
    deployment_mode: str = "RawDeployment"
    workers: int = 1
    threads: int = 1
    cpu: str = "1"
    memory: str = "2Gi"


def build_inference_service(spec: IsvcSpec, profile: Profile) -> Obj:
    """The InferenceService: one predictor replica running kaic's model server on the exported model."""
    acc = profile.accelerator
    resources: dict[str, dict[str, Any]] = {
        "requests": {"cpu": spec.cpu, "memory": spec.memory},
        "limits": {"cpu": spec.cpu, "memory": spec.memory},
    }
    if acc.per_worker > 0 and "/" in acc.resource_name:  # an extended resource (DRA classes take claims)
        resources["requests"][acc.resource_name] = "1"
        resources["limits"][acc.resource_name] = "1"
    container: dict[str, Any] = {
        "name": "kserve-container",
        "image": spec.image,
        "command": ["python", "-m", "steps.serve.model_server"],
        "args": [
            "--model-dir",
            MODEL_MOUNT,
            "--host",
            "0.0.0.0",
            "--http-port",
            str(PORT),
            "--workers",
            str(spec.workers),
            "--threads",
            str(spec.threads),
        ],
        "env": [{"name": "STORAGE_URI", "value": spec.storage_uri}],
        "ports": [{"containerPort": PORT, "name": "http1", "protocol": "TCP"}],
        "resources": resources,
        "securityContext": container_security(),
        "readinessProbe": {
            "httpGet": {"path": f"/v2/models/{spec.model}/ready", "port": PORT},
            "periodSeconds": 2,
            "failureThreshold": 3,
        },
    }
    predictor: dict[str, Any] = {
        "minReplicas": 1,
        "maxReplicas": 1,  # one pod, so /metrics of the Service is the pod that served every request
        "serviceAccountName": profile.kubernetes.service_account,
        "securityContext": pod_security(),
        "labels": {RUN_ID_LABEL: spec.run_id},  # propagated to the predictor's pods
        "containers": [container],
    }
    if acc.node_selector:
        predictor["nodeSelector"] = dict(acc.node_selector)
    if acc.tolerations:
        predictor["tolerations"] = [t.model_dump(exclude_none=True) for t in acc.tolerations]
    obj: Obj = {
        "apiVersion": ISVC_GROUP_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": {"app.kubernetes.io/part-of": "kaic", "app.kubernetes.io/component": "serve"},
            "annotations": {
                "serving.kserve.io/deploymentMode": spec.deployment_mode,
                "serving.kserve.io/enable-prometheus-scraping": "true",
            },
        },
        "spec": {"predictor": predictor},
    }
    return labelled(obj, spec.run_id)


def predictor_service(name: str) -> str:
    """The Service KServe creates for the predictor (port 80 -> the container's 8080)."""
    return f"{name}-predictor"


def isvc_ready(obj: Obj | None) -> bool:
    return condition_true(obj, "Ready")


def isvc_not_ready_reason(obj: Obj | None) -> str:
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    bad = [
        f"{c.get('type')}={c.get('status')} ({c.get('reason') or c.get('message') or ''})"
        for c in conds
        if c.get("status") != "True"
    ]
    return "; ".join(bad) or "no status conditions yet"


def isvc_internal_url(obj: Obj, namespace: str) -> str:
    """status.address.url (cluster-local), else the predictor Service's DNS name."""
    status = obj.get("status") or {}
    url = (status.get("address") or {}).get("url")
    if isinstance(url, str) and url.startswith("http://"):
        return url
    return f"http://{predictor_service(obj['metadata']['name'])}.{namespace}.svc.cluster.local"


def parse_gateway_ref(ref: str, default_namespace: str) -> tuple[str, str]:
    """'name' or 'namespace/name' -> (namespace, name)."""
    ns, _, name = ref.rpartition("/")
    return (ns or default_namespace), name


def gateway_parent_ref(gateway: str, namespace: str) -> dict[str, Any]:
    """The parentRef of a route in `namespace` to the Gateway 'name' or 'namespace/name'."""
    gw_ns, gw_name = parse_gateway_ref(gateway, namespace)
    parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name}
    if gw_ns != namespace:
        parent["namespace"] = gw_ns
    return parent


def build_http_route(isvc: str, namespace: str, run_id: str, gateway: str, model: str) -> Obj:
    """An HTTPRoute on `gateway`: /v2/models/<model> to the predictor's Service."""
    return labelled(
        {
            "apiVersion": ROUTE_GROUP_VERSION,
            "kind": "HTTPRoute",
            "metadata": {"name": f"{isvc}-route", "namespace": namespace},
            "spec": {
                "parentRefs": [gateway_parent_ref(gateway, namespace)],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": f"/v2/models/{model}"}}],
                        "backendRefs": [{"kind": "Service", "name": predictor_service(isvc), "port": 80}],
                    }
                ],
            },
        },
        run_id,
    )


def route_accepted(obj: Obj | None) -> bool:
    """Every parent reports Accepted=True and ResolvedRefs=True."""
    parents = ((obj or {}).get("status") or {}).get("parents") or []
    if not parents:
        return False
    for p in parents:
        conds = {c.get("type"): c.get("status") for c in p.get("conditions") or []}
        if conds.get("Accepted") != "True" or conds.get("ResolvedRefs") != "True":
            return False
    return True


def gateway_address(gw: Obj | None) -> str | None:
    """http://<address>[:port] of a Gateway's first address and first HTTP listener, when programmed."""
    if not gw:
        return None
    addrs = (gw.get("status") or {}).get("addresses") or []
    if not addrs or not addrs[0].get("value"):
        return None
    port = next(
        (
            int(li["port"])
            for li in (gw.get("spec") or {}).get("listeners") or []
            if li.get("protocol") == "HTTP" and "port" in li
        ),
        80,
    )
    return f"http://{addrs[0]['value']}" + ("" if port == 80 else f":{port}")
