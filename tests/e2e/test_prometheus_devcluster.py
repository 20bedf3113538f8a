"""`serve.metrics_collected` (CNCF `ai_service_metrics`) on the dev cluster, nothing faked: the served model is a
pod (kaic's ModelServer, run by the pod runner on the node `kaic-runner`, pod IP 127.0.0.1), and a real
Prometheus (v3.16.0, built from its Go module) finds it through the API server (Kubernetes discovery, role pod,
a ServiceAccount token limited by RBAC to the test namespace), the way a cluster's Prometheus finds KServe's
predictor pods: by the `prometheus.io/scrape` and `prometheus.io/port` annotations.

Real V2 requests go through kaic's own load driver, then kaic's own probe (`collection_outcome`) asks the
Prometheus HTTP API. While the pod carries no scrape annotation the probe fails at its deadline; once the pod is
annotated it passes with at least the requests sent. Deleting the pod stops the server (its port closes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaic.cluster import wait_until
from kaic.cluster.kube import KubeCluster, resource_path
from kaic.devcluster import prometheus
from kaic.devcluster.pod_runner import LABEL, NODE, TAINT
from kaic.devcluster.processes import free_port, port_listens
from kaic.results import Status
from steps.serve import exercise, prom
from steps.serve.export import ExportedModel
from tests.e2e import live
from tests.prometheus_fixtures import send_requests

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
READY_DEADLINE_S = 240.0    # the pod's process imports torch and kserve: slow on a loaded machine
COLLECT_DEADLINE_S = 90.0   # discovery of the annotation change, then scrapes 1 s apart
MISSING_DEADLINE_S = 6.0    # short: the negative case waits it out
RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
              "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.fixture(scope="module")
def kc(kubeconfig: str) -> KubeCluster:
    """An admin client, once the pod runner's Node is Ready (the cluster's argo addon starts the runner)."""
    client = live.connect(kubeconfig)
    node = client.get("v1", "nodes", NODE)
    if not any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in ((node or {}).get("status") or {}).get("conditions") or []):
        pytest.skip(f"the cluster has no Ready node {NODE}: start it with `make cluster` (its argo addon runs "
                    "the pod runner)")
    return client


def access(kc: KubeCluster, kubeconfig: str, ns: str, out: Path) -> prometheus.KubernetesAccess:
    """A ServiceAccount that may only get/list/watch the namespace's pods, its token and the cluster CA in
    files: what Prometheus authenticates with."""
    live.service_account(kc, ns, "prometheus")
    kc.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
              "metadata": {"name": "prometheus", "namespace": ns},
              "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})
    kc.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
              "metadata": {"name": "prometheus", "namespace": ns},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "prometheus"},
              "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": ns}]})
    out.mkdir(parents=True, exist_ok=True)
    (out / "token").write_text(live.mint_token(kc, ns, "prometheus", 3600))
    cfg = yaml.safe_load(Path(kubeconfig).read_text())
    ctx_name = cfg.get("current-context") or cfg["contexts"][0]["name"]
    ctx = next(c for c in cfg["contexts"] if c["name"] == ctx_name)["context"]
    cluster = next(c for c in cfg["clusters"] if c["name"] == ctx["cluster"])["cluster"]
    if "certificate-authority-data" in cluster:
        import base64

        (out / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    else:
        (out / "ca.crt").write_bytes(Path(cluster["certificate-authority"]).read_bytes())
    return prometheus.KubernetesAccess(str(cluster["server"]), out / "token", out / "ca.crt")


def predictor_pod(ns: str, model_dir: Path, port: int, image: str) -> dict[str, Any]:
    """One container running kaic's ModelServer (what the InferenceService's predictor runs), steered to the
    pod runner's node; no scrape annotation yet."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "digits-predictor", "namespace": ns, "labels": {"app": "digits-predictor"}},
        "spec": {
            "nodeSelector": {LABEL: "true"},
            "tolerations": [{"key": TAINT["key"], "operator": "Equal", "value": TAINT["value"],
                             "effect": TAINT["effect"]}],
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "containers": [{
                "name": "kserve-container", "image": image,
                "command": ["python", "-m", "steps.serve.model_server", "--model-dir", str(model_dir),
                            "--host", "127.0.0.1", "--http-port", "$(PORT)"],
                "env": [{"name": "PORT", "value": str(port)}, {"name": "PYTHONPATH", "value": str(REPO)}],
                "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}],
                "securityContext": RESTRICTED,
            }],
        },
    }


@pytest.fixture(scope="module")
def served(kc: KubeCluster, digits_model: ExportedModel) -> Iterator[tuple[str, exercise.Endpoint]]:
    """(namespace, endpoint) of the model served by a pod the pod runner runs."""
    with live.namespace(kc, "kaic-prom") as ns:
        port = free_port()
        kc.create(predictor_pod(ns, digits_model.dir, port, live.profile(ns).image))

        def running() -> dict[str, Any] | None:
            pod = kc.get("v1", "pods", "digits-predictor", ns) or {}
            status = pod.get("status") or {}
            assert status.get("phase") in ("Pending", "Running"), status
            return pod if status.get("phase") == "Running" else None

        pod = wait_until(running, live.DEADLINE_S, f"pod {ns}/digits-predictor Running on {NODE}", 0.5)
        assert pod["spec"]["nodeName"] == NODE
        assert pod["status"]["podIP"] == "127.0.0.1"
        ep = exercise.Endpoint(pod["status"]["podIP"], port)

        def died() -> str | None:
            status = (kc.get("v1", "pods", "digits-predictor", ns) or {}).get("status") or {}
            return None if status.get("phase") == "Running" else f"pod {status.get('phase')}: {status.get('message')}"

        exercise.wait_ready(ep, digits_model.name, READY_DEADLINE_S, died, interval_s=1.0)
        try:
            yield ns, ep
        finally:
            kc.delete("v1", "pods", "digits-predictor", ns)
            wait_until(lambda: not port_listens(port), live.DEADLINE_S,
                       f"the deleted pod's server to stop listening on {port}", 0.5)


def test_prometheus_collects_the_served_model_only_once_its_pod_is_annotated(
        prometheus_binary: Path, kc: KubeCluster, kubeconfig: str, digits_model: ExportedModel,
        served: tuple[str, exercise.Endpoint], tmp_path: Path) -> None:
    ns, ep = served
    job = prometheus.pod_scrape_config("kubernetes-pods", access(kc, kubeconfig, ns, tmp_path / "sa"), [ns])
    with prometheus.Prometheus.start(prometheus_binary, prometheus.config([job]), tmp_path / "prom") as p:
        checks, sent = send_requests(ep, digits_model)

        missing = prom.collection_outcome(checks, p.url, digits_model.name, ns, MISSING_DEADLINE_S)
        assert missing.status is Status.FAILED, missing.message
        assert f"after {MISSING_DEADLINE_S:g}s:" in missing.message
        assert "= 0, fewer than the" in missing.message
        assert p.targets() == []  # discovered, and dropped for want of the annotation

        status, _ = kc.request("PATCH", resource_path("v1", "pods", ns, "digits-predictor"),
                               body={"metadata": {"annotations": {prometheus.SCRAPE_ANNOTATION: "true",
                                                                  prometheus.PORT_ANNOTATION: str(ep.port)}}},
                               content_type="application/merge-patch+json")
        assert status == 200
        collected = prom.collection_outcome(checks, p.url, digits_model.name, ns, COLLECT_DEADLINE_S)
        [target] = p.targets()
    assert collected.status is Status.PASSED, collected.message
    assert collected.value is not None
    assert collected.value >= sent
    assert target["labels"]["namespace"] == ns
    assert target["labels"]["pod"] == "digits-predictor"
    assert target["scrapeUrl"] == f"http://127.0.0.1:{ep.port}/metrics"
    assert target["health"] == "up"


def test_a_plain_pod_of_two_containers_fails_naming_what_is_not_emulated(kc: KubeCluster) -> None:
    with live.namespace(kc, "kaic-plain") as ns:
        pod = predictor_pod(ns, Path("/nonexistent"), free_port(), "busybox")
        sidecar = {**pod["spec"]["containers"][0], "name": "proxy", "command": ["sleep", "60"], "ports": []}
        pod["spec"]["containers"].append(sidecar)
        kc.create(pod)

        def ended() -> dict[str, Any] | None:
            got = kc.get("v1", "pods", "digits-predictor", ns) or {}
            return got if (got.get("status") or {}).get("phase") == "Failed" else None

        failed = wait_until(ended, live.DEADLINE_S, f"pod {ns}/digits-predictor Failed", 0.5)
    assert "exactly one container" in failed["status"]["message"]
    first = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (first["reason"], first["exitCode"]) == ("StartError", 128)
