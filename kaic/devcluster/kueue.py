"""Kueue as a local process: its configuration, its webhooks registered by URL, and the GPU queues.

Kueue's internal certificate management is off: the dev cluster signs the webhook server's certificate with
its own CA, and registers Kueue's webhook configurations (from the module's config/components/webhook) with
``url: https://127.0.0.1:<port>/<path>`` and that CA as caBundle. Only the webhooks of what this Kueue serves
(its own kinds and batch/v1 Job) are registered: a webhook nobody answers would block its kind.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import yaml

from kaic.devcluster.certs import KeyPair

NAMESPACE = "kueue-system"
# Tests and users submit Jobs here with the label kueue.x-k8s.io/queue-name=<LOCAL_QUEUE>.
QUEUE_NAMESPACE = "kaic-queue"
LOCAL_QUEUE = "gpu"
CLUSTER_QUEUE = "gpu-cluster-queue"
FLAVOR = "gpu-h100"
GPU_QUOTA = 16
FRAMEWORKS = ("batch/job",)
# Kueue reads its metrics serving certificate from this fixed path when it does not manage certificates.
METRICS_CERT_DIR = Path("/etc/kueue/metrics/certs")
_SERVED_PATH_PARTS = ("-kueue-x-k8s-io-", "-batch-v1-job")


def config(ports_webhook: int, ports_health: int, ports_metrics: int, cert_dir: Path) -> dict[str, Any]:
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{ports_health}"},
        "metrics": {"bindAddress": f"127.0.0.1:{ports_metrics}"},
        "webhook": {"port": ports_webhook, "host": "127.0.0.1", "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        # All-or-nothing ("gang") admission: a Job's pods must all be ready within the timeout, or it is
        # evicted and requeued; blockAdmission admits one such workload at a time.
        "waitForPodsReady": {"timeout": "5m", "blockAdmission": True},
        "manageJobsWithoutQueueName": False,
        "integrations": {"frameworks": list(FRAMEWORKS)},
    }


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def install_webhook_cert(serving: KeyPair, cert_dir: Path) -> None:
    """The webhook server's key pair as controller-runtime expects it (tls.crt, tls.key), and the same pair
    as Kueue's metrics certificate at its fixed path, unless one is there: that path is shared by every dev
    cluster on the machine, a running Kueue watches it, and any valid pair serves its metrics."""
    for folder in (cert_dir, METRICS_CERT_DIR):
        if folder == METRICS_CERT_DIR and (folder / "tls.crt").is_file() and (folder / "tls.key").is_file():
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(serving.cert, folder / "tls.crt")
            shutil.copyfile(serving.key, folder / "tls.key")
        except OSError as exc:
            raise RuntimeError(f"cannot write Kueue's certificate to {folder}: {exc}") from exc


def webhook_configurations(kueue_dir: Path, port: int, ca_cert: Path) -> list[dict[str, Any]]:
    """Kueue's Mutating/ValidatingWebhookConfiguration, pointed at the local process by URL."""
    ca_bundle = base64.b64encode(ca_cert.read_bytes()).decode()
    source = kueue_dir / "config" / "components" / "webhook" / "manifests.yaml"
    configs = []
    for doc in yaml.safe_load_all(source.read_text()):
        if not doc:
            continue
        hooks = []
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            if not any(part in path for part in _SERVED_PATH_PARTS):
                continue
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca_bundle}
            hooks.append(hook)
        kind = doc["kind"]
        prefix = "kueue-mutating" if kind.startswith("Mutating") else "kueue-validating"
        configs.append({"apiVersion": doc["apiVersion"], "kind": kind,
                        "metadata": {"name": f"{prefix}-webhook-configuration"}, "webhooks": hooks})
    return configs


def crd_files(kueue_dir: Path) -> list[Path]:
    return sorted((kueue_dir / "config" / "components" / "crd" / "bases").glob("*.yaml"))


def queue_objects(gpu_pool_label: tuple[str, str]) -> list[dict[str, Any]]:
    """A ResourceFlavor over the GPU pool, a ClusterQueue with 16 GPUs of quota, a LocalQueue for tests."""
    key, value = gpu_pool_label
    api = "kueue.x-k8s.io/v1beta2"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": QUEUE_NAMESPACE}},
        {"apiVersion": api, "kind": "ResourceFlavor", "metadata": {"name": FLAVOR},
         "spec": {"nodeLabels": {key: value}}},
        {"apiVersion": api, "kind": "ClusterQueue", "metadata": {"name": CLUSTER_QUEUE},
         "spec": {"namespaceSelector": {},
                  "resourceGroups": [{"coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                                      "flavors": [{"name": FLAVOR, "resources": [
                                          {"name": "cpu", "nominalQuota": "192"},
                                          {"name": "memory", "nominalQuota": "3Ti"},
                                          {"name": "nvidia.com/gpu", "nominalQuota": str(GPU_QUOTA)}]}]}]}},
        {"apiVersion": api, "kind": "LocalQueue", "metadata": {"name": LOCAL_QUEUE, "namespace": QUEUE_NAMESPACE},
         "spec": {"clusterQueue": CLUSTER_QUEUE}},
    ]
