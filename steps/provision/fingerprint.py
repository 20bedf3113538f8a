"""The platform fingerprint: what the machine or the cluster is, as rows and as `fingerprint.json`.

`fingerprint.json` (at `runs/<run-id>/provision/fingerprint.json` in the object store) is what teardown
compares against: accelerator `allocatable` per node and resource name, and in total.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from kaic.hardware.host import Host
from kaic.hardware.nodes import NodeInfo
from kaic.hardware.resources import parse_quantity
from kaic.results import Outcome, Status
from steps.provision.view import ClusterView

GIB = 2**30


@dataclass(frozen=True)
class Fingerprint:
    cluster: str
    k8s_version: str  # "1.35" (major.minor) or "" where unknown / no cluster
    accelerator: str  # dominant product, "cpu" when none, "unknown" when its product is not named
    outcomes: list[Outcome]
    document: dict[str, Any]


def short_version(version: dict[str, Any]) -> str:
    major, minor = str(version.get("major", "")).strip(), str(version.get("minor", "")).strip().rstrip("+")
    if major and minor:
        return f"{major}.{minor}"
    git = str(version.get("gitVersion", "")).lstrip("v")
    return ".".join(git.split(".")[:2]) if git else ""


def local(host: Host) -> Fingerprint:
    gpus = host.accelerators.gpus
    rep = host.accelerators
    summary = (f"{host.os}, kernel {host.kernel}, {host.cpu_model} x{host.cpu_count}, "
               f"{host.memory_bytes / GIB:.1f} GiB")
    outcomes = [Outcome("provision.fingerprint", Status.PASSED, f"local machine {host.hostname}: {summary}",
                        evidence=f"platform.uname, /proc/cpuinfo, /etc/os-release; accelerators via "
                                 f"{host.accelerator_source}")]
    if gpus:
        detail = (f"{len(gpus)}x {gpus[0].product}, driver {rep.driver_version}, CUDA {rep.cuda_version}, "
                  f"MIG {gpus[0].mig_mode}, ECC {gpus[0].ecc_mode} (via {host.accelerator_source})")
        outcomes.append(Outcome.measured("provision.accelerators", "accelerator_count", len(gpus), "devices", detail))
        if gpus[0].memory_mib:
            outcomes.append(Outcome.measured("provision.accelerators", "accelerator_memory_gib",
                                             gpus[0].memory_mib / 1024, "GiB", f"per device, {gpus[0].product}"))
    else:
        outcomes.append(Outcome.measured("provision.accelerators", "accelerator_count", 0, "devices",
                                         f"CPU only: {host.accelerator_note or 'no accelerator found'}"))
    outcomes += [Outcome.measured("provision.cpu_memory", "cpu_count", host.cpu_count, "cores", host.cpu_model),
                 Outcome.measured("provision.cpu_memory", "memory_gib", host.memory_bytes / GIB, "GiB")]
    document = {
        "kind": "local", "cluster": host.hostname, "k8s_version": "",
        "host": {k: v for k, v in asdict(host).items() if k != "accelerators"},
        "accelerators": {"driver_version": rep.driver_version, "cuda_version": rep.cuda_version,
                         "devices": [asdict(g) for g in gpus]},
        "nodes": [], "allocatable": {"nvidia.com/gpu": len(gpus)} if gpus else {},
    }
    return Fingerprint(host.hostname, "", host.accelerator, outcomes, document)


def _resources(node: dict[str, Any], which: str) -> tuple[float, float]:
    res = (node.get("status") or {}).get(which) or {}
    try:
        return parse_quantity(res.get("cpu", 0)), parse_quantity(res.get("memory", 0))
    except ValueError:
        return 0.0, 0.0


def cluster(view: ClusterView, name: str) -> Fingerprint:
    nodes = view.nodes()
    raw = view.items("", "nodes")
    version = str(view.version.get("gitVersion", "")) or short_version(view.version)
    providers = Counter(n.provider for n in nodes)
    types = Counter(n.instance_type for n in nodes if n.instance_type)
    products: Counter[str] = Counter()
    for n in nodes:
        if n.has_accelerator:
            products[n.product or "unknown"] += max(n.count, 1)
    accelerator = products.most_common(1)[0][0] if products else ("cpu" if nodes else "")
    provider = providers.most_common(1)[0][0] if providers else "unknown"
    summary = (f"Kubernetes {version or 'version unknown'}, provider {provider}, {len(nodes)} node(s)"
               + (f", instance types {', '.join(f'{t} x{c}' for t, c in types.most_common(5))}" if types else "")
               + (f", accelerators {', '.join(f'{p} x{c}' for p, c in products.most_common())}" if products else ""))
    ok = bool(nodes or version)
    outcomes = [Outcome("provision.fingerprint", Status.PASSED if ok else Status.FAILED,
                        summary if ok else "no version and no nodes could be read",
                        evidence=f"{view.source}: /version, nodes (spec.providerID, labels, capacity)")]
    accel_nodes = [n for n in nodes if n.has_accelerator]
    count = sum(n.count for n in accel_nodes)
    first = next((n for n in accel_nodes if n.memory_mib), None)
    drivers = sorted({n.driver_version for n in accel_nodes if n.driver_version})
    detail = ", ".join(f"{p} x{c}" for p, c in products.most_common()) or "no accelerators"
    if drivers:
        detail += f"; driver {', '.join(drivers)}"
    if "unknown" in products:
        detail += "; some accelerators name no product (unknown)"
    outcomes.append(Outcome.measured("provision.accelerators", "accelerator_count", count, "devices", detail))
    if first and first.memory_mib:
        outcomes.append(Outcome.measured("provision.accelerators", "accelerator_memory_gib", first.memory_mib / 1024,
                                         "GiB", f"per device, {first.product} (node {first.name})"))
    cpu = sum(_resources(n, "capacity")[0] for n in raw)
    mem = sum(_resources(n, "capacity")[1] for n in raw)
    if raw and cpu:
        outcomes += [Outcome.measured("provision.cpu_memory", "cpu_count", cpu, "cores", f"capacity of {len(raw)} "
                                      "node(s)"),
                     Outcome.measured("provision.cpu_memory", "memory_gib", mem / GIB, "GiB")]
    else:
        outcomes.append(Outcome.skipped("provision.cpu_memory", "unknown: no node capacity was read"))
    total: Counter[str] = Counter()
    for n in nodes:
        total.update(n.allocatable)
    document = {
        "kind": "cluster", "cluster": name, "k8s_version": version, "provider": provider, "source": view.source,
        "nodes": [_node_doc(n) for n in nodes], "allocatable": dict(sorted(total.items())),
    }
    return Fingerprint(name, short_version(view.version), accelerator, outcomes, document)


def _node_doc(n: NodeInfo) -> dict[str, Any]:
    return {"name": n.name, "provider": n.provider, "instance_type": n.instance_type,
            "kubelet_version": n.kubelet_version,
            "accelerator": {"vendor": n.vendor, "product": n.product, "count": n.count, "memory_mib": n.memory_mib,
                            "driver_version": n.driver_version, "runtime_version": n.runtime_version,
                            "mig": n.mig, "vgpu": n.vgpu} if n.has_accelerator else None,
            "capacity": n.capacity, "allocatable": n.allocatable}
