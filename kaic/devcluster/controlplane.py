"""The command lines of the dev cluster's processes: etcd, the Kubernetes control plane, kwok, Kueue.

Pure builders: each takes the binaries, the files and the ports, and returns a ProcessSpec with its
readiness test. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import ssl
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kaic.devcluster.build import ETCD, KUBERNETES, KUEUE, KWOK
from kaic.devcluster.processes import ProcessSpec
from kaic.devcluster.topology import KWOK_SELECTOR

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.1/16"

# The controllers kaic relies on (job, GC, namespace, service accounts and their tokens, resourceclaim, HPA),
# what Deployments/StatefulSets/CronJobs and Services need, and the publisher of kube-root-ca.crt that every
# pod's service-account volume mounts.
CONTROLLERS = (
    "job-controller", "cronjob-controller", "garbage-collector-controller", "namespace-controller",
    "serviceaccount-controller", "serviceaccount-token-controller", "resourceclaim-controller",
    "horizontal-pod-autoscaler-controller", "deployment-controller", "replicaset-controller",
    "statefulset-controller", "daemonset-controller", "endpointslice-controller",
    "endpointslice-mirroring-controller", "endpoints-controller", "pod-garbage-collector-controller",
    "ttl-after-finished-controller", "disruption-controller", "resourcequota-controller",
    "root-ca-certificate-publisher-controller", "clusterrole-aggregation-controller",
    "persistentvolumeclaim-protection-controller", "ephemeral-volume-controller",
    # Removes the not-ready taint admission puts on every new Node once kwok reports it Ready (without it no
    # pod is ever bound), and watches the nodes' Leases that kwok renews.
    "node-lifecycle-controller",
)


@dataclass(frozen=True)
class Ports:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int
    kueue_webhook: int
    kueue_health: int
    kueue_metrics: int

    def all(self) -> list[int]:
        return list(vars(self).values())


@dataclass(frozen=True)
class Files:
    """The PKI and configuration files the processes read (all under the cluster folder)."""

    ca_cert: Path
    ca_key: Path
    apiserver_cert: Path
    apiserver_key: Path
    sa_pub: Path
    sa_key: Path
    tokens_csv: Path
    kubeconfig_admin: Path
    kubeconfig_controller_manager: Path
    kubeconfig_scheduler: Path
    kubeconfig_components: Path
    kwok_config: Path
    kueue_config: Path
    etcd_data: Path


def https_ok(url: str, ca: Path, token: str | None = None) -> Callable[[], bool]:
    """A readiness test: GET `url` (TLS verified against `ca`) answers 200."""
    context = ssl.create_default_context(cafile=str(ca))

    def probe() -> bool:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        with urllib.request.urlopen(request, timeout=3, context=context) as response:
            return bool(response.status == 200)
    return probe


def https_insecure_ok(url: str) -> Callable[[], bool]:
    """A readiness test for components serving a self-signed certificate of their own (controller-manager,
    scheduler): only that /healthz answers 200."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    def probe() -> bool:
        with urllib.request.urlopen(url, timeout=3, context=context) as response:
            return bool(response.status == 200)
    return probe


def http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    return probe


def etcd(files: Files, ports: Ports) -> ProcessSpec:
    client = f"http://127.0.0.1:{ports.etcd}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return ProcessSpec("etcd", [
        str(ETCD.path("etcd")), "--name=kaic-dev", f"--data-dir={files.etcd_data}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=kaic-dev={peer}",
        "--unsafe-no-fsync",  # a throwaway test store: no fsync, much faster on a loaded machine
        "--log-level=warn",
    ], ports=(ports.etcd, ports.etcd_peer), ready=http_ok(f"{client}/health"))


def apiserver(files: Files, ports: Ports, admin_token: str) -> ProcessSpec:
    return ProcessSpec("kube-apiserver", [
        str(KUBERNETES.path("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={files.apiserver_cert}", f"--tls-private-key-file={files.apiserver_key}",
        f"--client-ca-file={files.ca_cert}", f"--token-auth-file={files.tokens_csv}",
        "--authorization-mode=Node,RBAC",
        # The default plugins (PodSecurity among them) stay on; NodeRestriction goes with Node authorization.
        "--enable-admission-plugins=NodeRestriction",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={files.sa_pub}", f"--service-account-signing-key-file={files.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--runtime-config=resource.k8s.io/v1=true",
        "--feature-gates=DynamicResourceAllocation=true",
        "--allow-privileged=true",
        "--endpoint-reconciler-type=none",  # 127.0.0.1 is no valid endpoint for the `kubernetes` Service
        "--profiling=false",
        "--request-timeout=5m",  # creating Argo's full CRDs on a loaded machine can take over the default 1m
    ], ports=(ports.apiserver,), ready_timeout=600.0,
        ready=https_ok(f"https://127.0.0.1:{ports.apiserver}/readyz", files.ca_cert, admin_token))


def _client_args(kubeconfig: Path, port: int) -> list[str]:
    """What the controller-manager and the scheduler share: their kubeconfig (also for delegated authn/authz
    of their own endpoint), a secure port on loopback, no leader election, DRA on."""
    return [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", "--bind-address=127.0.0.1", f"--secure-port={port}",
            "--leader-elect=false", "--feature-gates=DynamicResourceAllocation=true"]


def controller_manager(files: Files, ports: Ports) -> ProcessSpec:
    kubeconfig = files.kubeconfig_controller_manager
    return ProcessSpec("kube-controller-manager", [
        str(KUBERNETES.path("kube-controller-manager")), *_client_args(kubeconfig, ports.controller_manager),
        f"--controllers={','.join(CONTROLLERS)}",
        f"--service-account-private-key-file={files.sa_key}", f"--root-ca-file={files.ca_cert}",
        "--use-service-account-credentials=true",
    ], ports=(ports.controller_manager,),
        ready=https_insecure_ok(f"https://127.0.0.1:{ports.controller_manager}/healthz"))


def scheduler(files: Files, ports: Ports) -> ProcessSpec:
    kubeconfig = files.kubeconfig_scheduler
    return ProcessSpec("kube-scheduler", [
        str(KUBERNETES.path("kube-scheduler")), *_client_args(kubeconfig, ports.scheduler),
    ], ports=(ports.scheduler,), ready=https_insecure_ok(f"https://127.0.0.1:{ports.scheduler}/healthz"))


def kwok(files: Files, ports: Ports) -> ProcessSpec:
    return ProcessSpec("kwok", [
        str(KWOK.path("kwok")), f"--kubeconfig={files.kubeconfig_components}", f"--config={files.kwok_config}",
        f"--manage-nodes-with-annotation-selector={KWOK_SELECTOR}",
        f"--server-address=127.0.0.1:{ports.kwok}", "--node-lease-duration-seconds=40",
        f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1",
    ], ports=(ports.kwok,), ready=http_ok(f"http://127.0.0.1:{ports.kwok}/healthz"))


def kueue(files: Files, ports: Ports) -> ProcessSpec:
    return ProcessSpec("kueue", [
        str(KUEUE.path("kueue")), f"--config={files.kueue_config}",
        # The visibility API would need an APIService (aggregation) the dev cluster does not register.
        "--feature-gates=VisibilityOnDemand=false",
        "--zap-log-level=info",
    ], env={"KUBECONFIG": str(files.kubeconfig_components)},
        ports=(ports.kueue_webhook, ports.kueue_health, ports.kueue_metrics),
        ready=http_ok(f"http://127.0.0.1:{ports.kueue_health}/readyz"))


def dra_driver(files: Files, topology: Path) -> ProcessSpec:
    return ProcessSpec("dra-driver", [
        sys.executable, "-m", "kaic.devcluster.dra_driver", "--kubeconfig", str(files.kubeconfig_components),
        "--topology", str(topology),
    ])
