"""READ probes about accelerators: DRA, driver versions, sharing, vGPU, device access, metrics exporter.

Pure functions of a `ClusterView`; each returns one Outcome for its catalog check, with evidence naming
the objects and APIs that decided it. A verdict that would rest on a listing kaic did not see in full
is `skipped` ("unknown: ..."), never failed.
"""

from __future__ import annotations

from typing import Any

from kaic.catalog import evidence as evidence_rule
from kaic.hardware.nodes import NodeInfo
from kaic.results import Outcome, Status
from steps.provision.view import ClusterView

DRA = "resource.k8s.io"
DRA_KINDS = ("deviceclasses", "resourceclaims", "resourceclaimtemplates", "resourceslices")
# DRA drivers that publish accelerators (ResourceSlice spec.driver).
ACCELERATOR_DRIVERS = ("gpu.nvidia.com", "gpu.amd.com", "gpu.intel.com", "gpu.example.com", "tpu.google.com",
                       "neuron.aws.com")
EXPORTERS = r"dcgm-exporter|dcgm_exporter|device-metrics-exporter|metrics-exporter-amd|xpumanager|neuron-monitor"
DEVICE_PLUGINS = r"device-plugin|k8s-dra-driver|dra-driver|gpu-operator"


def _name(o: dict[str, Any]) -> str:
    return str((o.get("metadata") or {}).get("name", ""))


def _accelerator_slices(view: ClusterView) -> list[dict[str, Any]]:
    return [s for s in view.items(DRA, "resourceslices")
            if (s.get("spec") or {}).get("driver") in ACCELERATOR_DRIVERS and (s.get("spec") or {}).get("devices")]


def _devices(view: ClusterView) -> list[tuple[str, dict[str, Any]]]:
    """(driver, device) for every device of every accelerator ResourceSlice."""
    return [((s.get("spec") or {}).get("driver", ""), d) for s in _accelerator_slices(view)
            for d in (s.get("spec") or {}).get("devices") or []]


def _attr(device: dict[str, Any], name: str) -> str | None:
    a = (device.get("attributes") or {}).get(name)
    if not isinstance(a, dict):
        return None
    for key in ("string", "version", "int", "bool"):
        if key in a:
            return str(a[key])
    return None


def no_accelerators(view: ClusterView, nodes: list[NodeInfo]) -> str | None:
    """Why accelerator probes do not apply (None when accelerators were seen)."""
    if any(n.has_accelerator for n in nodes) or _accelerator_slices(view):
        return None
    if view.complete("", "nodes") and nodes:
        return f"no accelerators on any of {len(nodes)} nodes (no vendor labels, accelerator resources or DRA devices)"
    return "unknown: no node is listed in full, so kaic cannot tell whether accelerators exist"


def _skip_or_fail(check: str, message: str, complete: bool, evidence: str | None = None) -> Outcome:
    if complete:
        return Outcome(check, Status.FAILED, message, evidence=evidence)
    return Outcome(check, Status.SKIPPED, f"unknown: {message} in what kaic could read", evidence=evidence)


def _dra_kinds_served(view: ClusterView, versions: tuple[str, ...]) -> str | None:
    """The first of `versions` at which every DRA kind is served, else None."""
    for v in versions:
        if all(v in view.served_versions(DRA, k) for k in DRA_KINDS):
            return v
    return None


def dra_support(view: ClusterView) -> Outcome:
    """KAR-0051's plan is read-only: every resource.k8s.io/v1 kind served (v1beta1/v1beta2 at 1.33). No driver
    is needed; DeviceClasses and ResourceSlices are evidence, not conditions."""
    check = "provision.dra_apis"
    minor = cluster_minor(view)
    accepted = ("v1", "v1beta2", "v1beta1") if minor is not None and minor <= 33 else ("v1",)
    served = {k: sorted(view.served_versions(DRA, k)) for k in DRA_KINDS}
    classes = sorted(_name(o) for o in view.items(DRA, "deviceclasses"))
    slices = view.items(DRA, "resourceslices")
    drivers = sorted({(s.get("spec") or {}).get("driver", "") for s in slices})
    listing = "; ".join(f"{k} {','.join(v) or '-'}" for k, v in served.items())
    evidence = (f"resource.k8s.io served: {listing}; "
                f"DeviceClasses: {', '.join(classes) or 'none'}; "
                f"ResourceSlices: {len(slices)} (drivers: {', '.join(drivers) or 'none'})")
    version = _dra_kinds_served(view, accepted)
    if version is not None:
        at = "" if version == "v1" else f" (accepted at Kubernetes 1.{minor})"
        return Outcome(check, Status.PASSED, f"every resource.k8s.io/{version} kind is served{at}: "
                       f"{', '.join(DRA_KINDS)} (built-in kinds with create/get/list/update/delete)",
                       evidence=evidence)
    missing = [k for k in DRA_KINDS if not any(v in served[k] for v in accepted)]
    states = {view.served(DRA, k) for k in missing}
    other = sorted({v for k in DRA_KINDS for v in served[k]} - set(accepted))
    if "unknown" in states and not other:
        return Outcome(check, Status.SKIPPED, f"unknown: discovery of resource.k8s.io was not captured "
                       f"(kinds not seen: {', '.join(missing)})", evidence=evidence)
    detail = f" (only {', '.join(other)} served)" if other else ""
    return Outcome(check, Status.FAILED, f"resource.k8s.io/{'|'.join(accepted)} does not serve "
                   f"{', '.join(missing)}{detail}", evidence=evidence)


def cluster_minor(view: ClusterView) -> int | None:
    raw = str(view.version.get("minor") or "").rstrip("+")
    if raw.isdigit():
        return int(raw)
    git = str(view.version.get("gitVersion") or "").lstrip("v").split(".")
    return int(git[1]) if len(git) > 1 and git[1].isdigit() else None


def driver_versions(view: ClusterView, nodes: list[NodeInfo]) -> Outcome:
    check = "provision.driver_versions"
    why = no_accelerators(view, nodes)
    if why:
        return Outcome.skipped(check, why)
    seen = [f"node {n.name}: {n.product or n.vendor} driver {n.driver_version}"
            + (f" runtime {n.runtime_version}" if n.runtime_version else "")
            for n in nodes if n.has_accelerator and n.driver_version]
    dra = sorted({f"DRA {drv} device {_attr(d, 'productName') or d.get('name')}: driver {v}"
                  for drv, d in _devices(view) if (v := _attr(d, "driverVersion"))})
    seen += dra
    dra_nodes = {str((s.get("spec") or {}).get("nodeName") or "") for s in _accelerator_slices(view)
                 if any(_attr(d, "driverVersion") for d in (s.get("spec") or {}).get("devices") or [])}
    readable = ("nvidia", "amd")  # vendors whose driver version kaic knows where to read from labels
    lacking = [n for n in nodes if n.has_accelerator and not n.driver_version and n.vendor in readable
               and n.name not in dra_nodes]
    unknown = sorted({n.vendor or "?" for n in nodes if n.has_accelerator and n.vendor not in readable})
    evidence = "; ".join(seen[:20]) or None
    if lacking:
        names = ", ".join(n.name for n in lacking[:10])
        return Outcome(check, Status.FAILED, f"{len(lacking)} accelerator node(s) advertise no driver version "
                       "(no nvidia.com/cuda.driver* or amd.com/gpu.driver-version label, no DRA driverVersion "
                       f"attribute): {names}", evidence=evidence)
    if seen:
        how = "DRA driverVersion attributes" if dra and len(dra) == len(seen) else \
            "node labels and DRA attributes" if dra else "node labels"
        return evidence_rule.presence(check, f"driver versions advertised ({how}) for {len(seen)} "
                                      "node(s)/device(s)", "a pod comparing the driver it sees (NVML) with the "
                                      "advertised version", evidence)
    return Outcome.skipped(check, f"unknown: kaic cannot read driver versions of {', '.join(unknown)} "
                           "accelerators from labels or DRA attributes")


def advertised_drivers(view: ClusterView) -> dict[str, str]:
    """node -> the driver version it advertises: DRA driverVersion attributes, else node labels."""
    out = {n.name: n.driver_version for n in view.nodes() if n.has_accelerator and n.driver_version}
    for sl in _accelerator_slices(view):
        spec = sl.get("spec") or {}
        versions = {v for d in spec.get("devices") or [] if (v := _attr(d, "driverVersion"))}
        if spec.get("nodeName") and len(versions) == 1:
            out[str(spec["nodeName"])] = versions.pop()
    return out


def gpu_sharing(view: ClusterView, nodes: list[NodeInfo]) -> Outcome:
    check = "provision.gpu_sharing"
    why = no_accelerators(view, nodes)
    if why:
        return Outcome.skipped(check, why)
    found = []
    for n in nodes:
        if n.mig:
            found.append(f"node {n.name}: MIG " + ", ".join(f"{r}={c}" for r, c in sorted(n.mig.items())))
        if (n.replicas or 0) > 1 or n.sharing_strategy in ("time-slicing", "mps"):
            found.append(f"node {n.name}: {n.sharing_strategy or 'time-slicing'} x{n.replicas}")
        shared = [r for r in n.capacity if r.endswith(".shared")]
        if shared:
            found.append(f"node {n.name}: shared resources {', '.join(shared)}")
    for s in _accelerator_slices(view):
        spec = s.get("spec") or {}
        if spec.get("sharedCounters") or any(d.get("consumesCounters") for d in spec.get("devices") or []):
            found.append(f"ResourceSlice {_name(s)}: partitionable devices (shared counters)")
        migs = [d.get("name") for d in spec.get("devices") or [] if _attr(d, "type") == "mig"]
        if migs:
            found.append(f"ResourceSlice {_name(s)}: MIG devices {', '.join(map(str, migs[:5]))}")
    if found:
        return evidence_rule.presence(check, "accelerator sharing exposed (MIG, time-slicing or partitions)",
                                      "two pods sharing one physical device, both running",
                                      "; ".join(found[:20]))
    return _skip_or_fail(check, "accelerators seen but no MIG, time-slicing or partitionable devices",
                         view.complete("", "nodes"))


def vgpu(view: ClusterView, nodes: list[NodeInfo]) -> Outcome:
    check = "provision.vgpu"
    why = no_accelerators(view, nodes)
    if why:
        return Outcome.skipped(check, why)
    found = [f"node {n.name}: {n.product} (nvidia.com/vgpu.present)" if "nvidia.com/vgpu.present" in n.labels_seen
             else f"node {n.name}: {n.product}" for n in nodes if n.vgpu]
    found += sorted({f"DRA device {_attr(d, 'productName')} (brand {_attr(d, 'brand')})" for _, d in _devices(view)
                     if (_attr(d, "productName") or "").startswith("GRID") or "VCS" in (_attr(d, "brand") or "")
                     or "VWS" in (_attr(d, "brand") or "")})
    if found:
        return evidence_rule.presence(check, "virtualized accelerators (vGPU) advertised",
                                      "a pod running on a vGPU device", "; ".join(found[:20]))
    return _skip_or_fail(check, "no vGPU products among the accelerators", view.complete("", "nodes"))


def device_plugin(view: ClusterView, nodes: list[NodeInfo]) -> Outcome:
    check = "provision.device_plugin"
    why = no_accelerators(view, nodes)
    if why:
        return Outcome.skipped(check, why)
    found = [f"node {n.name}: allocatable " + ", ".join(f"{r}={c}" for r, c in sorted(n.allocatable.items()) if c)
             for n in nodes if any(n.allocatable.values())]
    found += sorted({f"DRA driver {drv} publishes devices" for drv, _ in _devices(view)})
    plugins = [f"{w} ready {r}/{d}" for w, r, d in view.workloads(DEVICE_PLUGINS)]
    evidence = "; ".join(found[:15] + plugins[:5]) or None
    if found:
        return evidence_rule.presence(
            check, "accelerators are handed out through a device plugin or DRA driver (allocatable extended "
            "resources / ResourceSlices)", "the isolation probes: a pod without a request sees no device, two "
            "claimed pods see only their own, a second container in a claimed pod sees nothing", evidence)
    return _skip_or_fail(check, "accelerator nodes have no allocatable accelerator resource and no DRA driver "
                         "publishes devices", view.complete("", "nodes") and view.complete(DRA, "resourceslices"),
                         evidence)


def accelerator_exporter(view: ClusterView, nodes: list[NodeInfo]) -> Outcome:
    check = "provision.accelerator_exporter"
    why = no_accelerators(view, nodes)
    if why:
        return Outcome.skipped(check, why)
    found = view.workloads(EXPORTERS)
    evidence = "; ".join(f"{w} ready {r}/{d}" for w, r, d in found) or None
    if any(r > 0 for _, r, _ in found):
        return evidence_rule.presence(check, "an accelerator metrics exporter is Running",
                                      "a scrape of its endpoint with per-device utilization and memory that "
                                      "move under load", evidence)
    if found:
        return Outcome(check, Status.FAILED, "accelerator metrics exporter present but no pod Ready",
                       evidence=evidence)
    return _skip_or_fail(check, "no accelerator metrics exporter (DCGM, AMD, Intel, Neuron) DaemonSet or Deployment",
                         view.workloads_complete())
