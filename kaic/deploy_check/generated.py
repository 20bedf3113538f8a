"""Every Kubernetes manifest kaic generates, built by the real builders: the one list to extend when a
step starts creating something new (the schema, Pod Security and RBAC checks all read it).

Argo's step pods are not objects kaic sends, but Argo builds them from the compiled templates: each
container template is rendered into the Pod Argo would create (placeholders filled with the parameter
defaults), so Kubernetes' own schema and Pod Security see what the cluster will see.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from kaic.cluster import Obj

if TYPE_CHECKING:
    from steps.provision.active import PodSettings

SAMPLE_RUN_ID = "kaic-conformance-x7k2p"  # what Argo names a submitted workflow (and kaic's run id)
CLUSTER_PROFILES = ("generic", "eks", "gke", "aks", "openshift")
Manifest = tuple[str, Obj]


def workflow_manifests() -> list[Manifest]:
    """The compiled WorkflowTemplate and CronWorkflow (default profile, as `kaic compile` writes them)."""
    import yaml

    from kaic.deploy_check.chart_files import compiled

    return [(f"compiled {name}", yaml.safe_load(text)) for name, text in compiled().items()]


def _fill(value: Any, params: dict[str, str]) -> Any:
    """Argo's {{workflow.*}} placeholders replaced by the values a submitted run would have."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            key = m.group(1).strip()
            if key == "workflow.name":
                return SAMPLE_RUN_ID
            return params.get(key.removeprefix("workflow.parameters."), m.group(0))

        return re.sub(r"\{\{\s*([^}]+?)\s*\}\}", sub, value)
    if isinstance(value, list):
        return [_fill(v, params) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, params) for k, v in value.items()}
    return value


def step_pods(template: Obj) -> list[Manifest]:
    """One Pod per container template of a WorkflowTemplate, as Argo's controller would create it."""
    spec = template["spec"]
    params = {p["name"]: str(p.get("value", "")) for p in spec.get("arguments", {}).get("parameters", [])}
    out: list[Manifest] = []
    for t in spec.get("templates", []):
        if "container" not in t:
            continue
        container = copy.deepcopy(t["container"])
        container["name"] = "main"  # Argo's name for the template's container
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "serviceAccountName": spec.get("serviceAccountName", "default"),
            "containers": [container],
        }
        if "securityContext" in spec:
            pod_spec["securityContext"] = copy.deepcopy(spec["securityContext"])
        if "activeDeadlineSeconds" in t:
            pod_spec["activeDeadlineSeconds"] = int(t["activeDeadlineSeconds"])
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{SAMPLE_RUN_ID}-{t['name']}-1234567890",
                            "namespace": "kaic", "labels": dict((t.get("metadata") or {}).get("labels") or {})},
               "spec": pod_spec}
        out.append((f"workflow step pod {t['name']}", _fill(pod, params)))
    return out


def probe_manifests(profile_name: str = "eks") -> list[Manifest]:
    from kaic.profiles import load_profile
    from steps.provision.active import PodSettings, probe_pod
    from steps.provision.active_exporter import load_pod
    from steps.provision.active_platform import gang_job

    p = load_profile(profile_name)
    s = PodSettings(p.kubernetes.namespace, p.image, SAMPLE_RUN_ID, p.accelerator.resource_name,
                    dict(p.accelerator.node_selector),
                    tuple(t.model_dump(exclude_none=True) for t in p.accelerator.tolerations),
                    gang_queue=p.probes.gang_queue or "kaic")
    return [(f"provision probe Pod ({profile_name})", probe_pod("kaic-x7k2p-accel", s, 1, probe="accel")),
            (f"provision no-request probe Pod ({profile_name})", probe_pod("kaic-x7k2p-nodev", s, 0, 30)),
            (f"provision gang Job ({profile_name})", gang_job("kaic-x7k2p-gang-fits", s, 2, "gang-fits")),
            (f"provision exporter load Pod ({profile_name})",
             load_pod("kaic-x7k2p-exporter-load-0", s, "gpu-node-1", p.probes.exporter.load_s)),
            *gateway_probe_manifests(profile_name, s)]


def gateway_probe_manifests(profile_name: str, s: PodSettings) -> list[Manifest]:
    """The Gateway routing probe's objects (one backend of the two: they differ only in name and port)."""
    from kaic.profiles import load_profile
    from steps.provision.active_gateway import backend_pod, backend_service, backends, routing_route

    b, gateway = backends(SAMPLE_RUN_ID), load_profile(profile_name).serving.gateway or "gateway-system/inference"
    return [(f"provision gateway backend Pod ({profile_name})", backend_pod(b.a, "a", b.port_a, s)),
            (f"provision gateway backend Service ({profile_name})", backend_service(b.a, "a", b.port_a, s)),
            (f"provision gateway HTTPRoute ({profile_name})", routing_route(b, gateway, s))]


def train_manifests(profile_name: str) -> list[Manifest]:
    from kaic.profiles import load_profile
    from steps.train import cluster
    from steps.train.spec import WorkerSpec

    p = load_profile(profile_name)
    spec = WorkerSpec(p.storage.object_store or "s3://kaic/objects", f"runs/{SAMPLE_RUN_ID}/data/digits.parquet",
                      f"runs/{SAMPLE_RUN_ID}/train/torch.json", accelerators_per_worker=p.accelerator.per_worker)
    world, deadline = p.training.world_size, p.training.timeout_s
    return [(f"train headless Service ({profile_name})", cluster.headless_service(SAMPLE_RUN_ID, "torch", p)),
            (f"train Job ({profile_name})", cluster.indexed_job(SAMPLE_RUN_ID, "torch", p, spec, world, deadline)),
            (f"train TrainJob ({profile_name})", cluster.trainjob(SAMPLE_RUN_ID, "torch", p, spec, world, deadline))]


def serve_manifests(profile_name: str) -> list[Manifest]:
    from kaic.profiles import load_profile
    from steps.serve import isvc

    p = load_profile(profile_name)
    name, ns = isvc.isvc_name(SAMPLE_RUN_ID), p.kubernetes.namespace
    spec = isvc.IsvcSpec(name, ns, SAMPLE_RUN_ID, "digits", f"s3://kaic/objects/runs/{SAMPLE_RUN_ID}/model", p.image)
    return [(f"serve InferenceService ({profile_name})", isvc.build_inference_service(spec, p)),
            (f"serve HTTPRoute ({profile_name})",
             isvc.build_http_route(name, ns, SAMPLE_RUN_ID, p.serving.gateway or "gateway-system/inference",
                                   "digits"))]


def generated_manifests(profiles: tuple[str, ...] = CLUSTER_PROFILES) -> list[Manifest]:
    """(label, object) for everything kaic generates, for each cluster profile where a profile matters."""
    workflows = workflow_manifests()
    out = list(workflows)
    for _, body in workflows:
        if body.get("kind") == "WorkflowTemplate":
            out += step_pods(body)
    for name in profiles:
        out += probe_manifests(name) + train_manifests(name) + serve_manifests(name)
    return out
