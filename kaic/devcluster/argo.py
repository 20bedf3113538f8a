"""Argo Workflows on the dev cluster: its CRDs, the workflow-controller's ConfigMap, and the two processes that
make workflows run here: the real workflow-controller (v4, Go-built) and kaic's pod runner.

The controller runs as a local process with a kubeconfig, cluster-wide (every namespace), leader election
off. Its ConfigMap's `workflowDefaults` give every workflow pod the pod runner's node selector and
toleration, so the scheduler binds them to the runner's Node and nothing else lands there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kaic.devcluster.build import ARGO
from kaic.devcluster.pod_runner import LABEL, NODE, TAINT
from kaic.devcluster.processes import ProcessSpec

if TYPE_CHECKING:
    from kubernetes import client

    from kaic.devcluster.addons import ClusterContext

NAMESPACE = "argo"
CONFIGMAP = "workflow-controller-configmap"
EXECUTOR_IMAGE = f"quay.io/argoproj/argoexec:{ARGO.version}"  # named in the pods; never pulled here
HEALTH_PORT = 6060  # the controller's /healthz: fixed in its code, on every interface
def controller_config() -> dict[str, Any]:
    """The controller's configuration (the ConfigMap's `data` keys, as objects)."""
    return {
        "workflowDefaults": {"spec": {
            "nodeSelector": {LABEL: "true"},
            "tolerations": [{"key": TAINT["key"], "operator": "Equal", "value": TAINT["value"],
                             "effect": TAINT["effect"]}],
        }},
        # Argo's own init/wait containers meet Pod Security `restricted` (as Argo's docs advise), so workflows
        # run in restricted namespaces; the templates' containers bring their own securityContext.
        "executor": {"securityContext": {
            "runAsNonRoot": True, "runAsUser": 8737, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
        }},
        "metricsConfig": {"enabled": False},
        "telemetryConfig": {"enabled": False},
    }


def manifests() -> list[dict[str, Any]]:
    """The namespace and the ConfigMap the controller reads at start."""
    data = {key: yaml.safe_dump(value, sort_keys=False) for key, value in controller_config().items()}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE},
         "data": data},
    ]


def workflow_controller(kubeconfig: Path, binary: Path, ready: Callable[[], bool] | None = None) -> ProcessSpec:
    """The workflow-controller as a local process: the cluster's kubeconfig, every namespace, no leader
    election (one instance), its metrics server off."""
    return ProcessSpec("workflow-controller", [
        str(binary), f"--kubeconfig={kubeconfig}", f"--namespace={NAMESPACE}",
        f"--configmap={CONFIGMAP}", f"--executor-image={EXECUTOR_IMAGE}", "--loglevel=info",
        "--workflow-workers=4", "--pod-cleanup-workers=2", "--cron-workflow-workers=2",
    ], env={"LEADER_ELECTION_DISABLE": "true"}, ports=(HEALTH_PORT,), ready=ready)


def pod_runner(kubeconfig: Path, pods_dir: Path, pass_env: tuple[str, ...] = (),
               ready: Callable[[], bool] | None = None) -> ProcessSpec:
    """kaic's pod runner (kaic.devcluster.pod_runner) with this interpreter."""
    argv = [sys.executable, "-m", "kaic.devcluster.pod_runner", f"--kubeconfig={kubeconfig}",
            f"--pods-dir={pods_dir}", f"--node={NODE}"]
    argv += [f"--pass-env={name}" for name in pass_env]
    return ProcessSpec("pod-runner", argv, env={"PYTHONUNBUFFERED": "1"}, ready=ready)


def _http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        import urllib.request

        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    return probe


def _node_ready(api: client.ApiClient, name: str) -> Callable[[], bool]:
    def probe() -> bool:
        from kubernetes import client as k8s

        node = k8s.CoreV1Api(api).read_node(name)
        conditions = (node.status.conditions if node.status else None) or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)
    return probe


# The addon hook (kaic.devcluster.addons): objects first, then the processes, started and stopped with the rest.
def install(ctx: ClusterContext) -> None:
    for obj in manifests():
        ctx.applier.apply(obj)


def processes(ctx: ClusterContext) -> list[ProcessSpec]:
    return [
        pod_runner(ctx.components_kubeconfig, ctx.paths.root / "pods", ready=_node_ready(ctx.api, NODE)),
        workflow_controller(ctx.components_kubeconfig, ctx.binary(ARGO, "workflow-controller"),
                            ready=_http_ok(f"http://127.0.0.1:{HEALTH_PORT}/healthz")),
    ]
