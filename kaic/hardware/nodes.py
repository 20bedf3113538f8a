"""A Kubernetes Node object -> provider, instance type and accelerators (pure).

Reads vendor labels (NVIDIA GPU Feature Discovery `nvidia.com/*`, AMD node labeller `amd.com/gpu.*`,
GKE `cloud.google.com/gke-accelerator` / `gke-tpu-accelerator`) and the accelerator entries of
`status.capacity` / `status.allocatable`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kaic.hardware.resources import accelerator_resources, accelerator_vendor, is_mig, parse_quantity

# providerID scheme -> provider name (kubelet cloud providers and common distributions).
PROVIDERS: dict[str, str] = {
    "aws": "aws", "gce": "gcp", "azure": "azure", "openstack": "openstack", "vsphere": "vsphere",
    "ibm": "ibm", "oci": "oracle", "digitalocean": "digitalocean", "linode": "linode", "hcloud": "hetzner",
    "equinixmetal": "equinix", "packet": "equinix", "kind": "kind", "k3s": "k3s", "rke2": "rke2",
    "alicloud": "alibaba", "huaweicloud": "huawei", "baiducloud": "baidu", "tencentcloud": "tencent",
    "kubevirt": "kubevirt", "metal3": "metal3", "ovhcloud": "ovh", "scaleway": "scaleway",
}
# Labels that reveal a provider when providerID is empty (kubeadm on cloud VMs, partial dumps).
PROVIDER_LABELS: tuple[tuple[str, str | None, str], ...] = (
    ("eks.amazonaws.com/nodegroup", None, "aws"),
    ("karpenter.k8s.aws/instance-family", None, "aws"),
    ("cloud.google.com/gke-nodepool", None, "gcp"),
    ("kubernetes.azure.com/agentpool", None, "azure"),
    ("nvidia.com/gpu.machine", "Google-Compute-Engine", "gcp"),
    ("run.tanzu.vmware.com/kubernetesDistributionVersion", None, "vsphere"),
)

INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
_MIG_COUNT = re.compile(r"^nvidia\.com/mig-([0-9a-z.+]+)\.count$")
_VGPU_PRODUCT = re.compile(r"^(GRID[- ]|.*-\d+[QCAB]$)")


def provider_of(provider_id: str, labels: dict[str, str]) -> str:
    scheme = provider_id.split("://", 1)[0].lower() if "://" in provider_id else ""
    if scheme:
        return PROVIDERS.get(scheme, scheme)
    for key, value, name in PROVIDER_LABELS:
        if key in labels and (value is None or labels[key] == value):
            return name
    return "unknown"


@dataclass(frozen=True)
class NodeInfo:
    name: str
    provider: str
    instance_type: str
    kubelet_version: str
    vendor: str | None  # nvidia, amd, intel, google, aws, habana; None: no accelerator seen
    product: str | None  # None: an accelerator whose product no label names ("unknown")
    count: int  # physical devices (labels, else capacity of whole-device resources)
    memory_mib: int | None
    driver_version: str | None
    runtime_version: str | None  # CUDA runtime / ROCm
    capacity: dict[str, int] = field(default_factory=dict)  # accelerator resources only
    allocatable: dict[str, int] = field(default_factory=dict)
    mig: dict[str, int] = field(default_factory=dict)  # MIG profile -> instances (labels or capacity)
    replicas: int | None = None  # time-slicing replicas per device
    sharing_strategy: str | None = None  # GFD: none, time-slicing, mps
    vgpu: bool = False
    labels_seen: tuple[str, ...] = ()  # the label keys this fingerprint used (evidence)

    @property
    def has_accelerator(self) -> bool:
        return self.vendor is not None


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def _nvidia_driver(labels: dict[str, str]) -> str | None:
    full = labels.get("nvidia.com/cuda.driver-version.full")
    if full:
        return full
    parts = [labels.get(f"nvidia.com/cuda.driver.{p}") for p in ("major", "minor", "rev")]
    return ".".join(p for p in parts if p) if parts[0] else None


def _nvidia_runtime(labels: dict[str, str]) -> str | None:
    full = labels.get("nvidia.com/cuda.runtime-version.full")
    if full:
        return full
    major, minor = labels.get("nvidia.com/cuda.runtime.major"), labels.get("nvidia.com/cuda.runtime.minor")
    return f"{major}.{minor}" if major and minor else None


def _memory_mib(text: str | None) -> int | None:
    """'81559' (MiB, GFD) or '192G' / '64Gi' (AMD labeller) -> MiB."""
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        q = text if text.endswith("i") or not text[-1:].isalpha() else text + "i"
        return int(parse_quantity(q) // 2**20)
    except ValueError:
        return None


def node_info(node: dict[str, Any]) -> NodeInfo:
    meta = node.get("metadata") or {}
    labels: dict[str, str] = {k: str(v) for k, v in (meta.get("labels") or {}).items()}
    status = node.get("status") or {}
    capacity = accelerator_resources(status.get("capacity"))
    allocatable = accelerator_resources(status.get("allocatable"))
    used: list[str] = []

    def label(key: str) -> str | None:
        if key in labels:
            used.append(key)
            return labels[key]
        return None

    mig = {f"nvidia.com/mig-{m.group(1)}": n for k in labels
           if (m := _MIG_COUNT.match(k)) and (n := _int(labels[k]) or 0) > 0}
    mig.update({r: n for r, n in capacity.items() if is_mig(r) and n > 0})
    vendor: str | None = None
    product = driver = runtime = None
    count = 0
    memory = None
    if label("nvidia.com/gpu.present") == "true" or label("nvidia.com/gpu.product") or \
            any(accelerator_vendor(r) == "nvidia" for r in capacity):
        vendor = "nvidia"
        product = label("nvidia.com/gpu.product")
        count = _int(label("nvidia.com/gpu.count")) or capacity.get("nvidia.com/gpu", 0)
        memory = _memory_mib(label("nvidia.com/gpu.memory"))
        driver = _nvidia_driver(labels)
        runtime = _nvidia_runtime(labels)
        if driver:
            used.append("nvidia.com/cuda.driver*")
    elif label("amd.com/gpu.product-name") or label("amd.com/gpu.device-id") or "amd.com/gpu" in capacity:
        vendor = "amd"
        product = labels.get("amd.com/gpu.product-name") or labels.get("amd.com/gpu.family")
        count = capacity.get("amd.com/gpu", 0)
        memory = _memory_mib(label("amd.com/gpu.vram"))
        driver = label("amd.com/gpu.driver-version")
    elif label("cloud.google.com/gke-tpu-accelerator") or "google.com/tpu" in capacity:
        vendor = "google"
        product = labels.get("cloud.google.com/gke-tpu-accelerator")
        count = capacity.get("google.com/tpu", 0)
    else:
        for r in capacity:
            vendor = accelerator_vendor(r)
            if vendor:
                count = max(count, capacity[r])
                break
    if vendor is not None and product is None:
        product = label("cloud.google.com/gke-accelerator")
    replicas = _int(label("nvidia.com/gpu.replicas"))
    return NodeInfo(
        name=str(meta.get("name", "")),
        provider=provider_of(str((node.get("spec") or {}).get("providerID", "")), labels),
        instance_type=next((labels[k] for k in INSTANCE_TYPE_LABELS if k in labels), ""),
        kubelet_version=str((status.get("nodeInfo") or {}).get("kubeletVersion", "")),
        vendor=vendor, product=product, count=count, memory_mib=memory, driver_version=driver,
        runtime_version=runtime, capacity=capacity, allocatable=allocatable, mig=mig, replicas=replicas,
        sharing_strategy=label("nvidia.com/gpu.sharing-strategy"),
        vgpu=label("nvidia.com/vgpu.present") == "true" or bool(product and _VGPU_PRODUCT.match(product)),
        labels_seen=tuple(dict.fromkeys(used)),
    )
