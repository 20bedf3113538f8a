"""READ probes about the platform around accelerators: Gateway API and inference ingress, RDMA networking,
gang scheduling, autoscaling, metrics APIs and scraping, sandboxed runtimes, and AI operators.

Pure functions of a `ClusterView`, one Outcome each, evidence naming what decided it.
"""

from __future__ import annotations

from typing import Any

from kaic.hardware.nodes import NodeInfo
from kaic.results import Outcome, Status
from steps.provision.read_accelerators import _name, _skip_or_fail
from steps.provision.view import ClusterView, State

GW = "gateway.networking.k8s.io"

# (name, API group, plurals that must be served, controller Deployment/DaemonSet name pattern)
GANG_SCHEDULERS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("Kueue", "kueue.x-k8s.io", ("workloads", "clusterqueues", "localqueues"), r"kueue-controller-manager|^kueue$"),
    ("Volcano", "scheduling.volcano.sh", ("podgroups",), r"volcano-scheduler"),
    ("KAI Scheduler", "scheduling.run.ai", ("podgroups",), r"kai-scheduler|^binder$|^podgrouper$"),
    ("scheduler-plugins coscheduling", "scheduling.x-k8s.io", ("podgroups",), r"scheduler-plugins"),
    ("YuniKorn", "", (), r"yunikorn-scheduler"),
)
AI_OPERATORS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("Kubeflow Trainer", "trainer.kubeflow.org", ("trainjobs",), r"trainer-controller-manager|kubeflow-trainer"),
    ("Kubeflow Training Operator", "kubeflow.org", ("pytorchjobs",), r"training-operator"),
    ("KubeRay", "ray.io", ("rayclusters",), r"kuberay-operator"),
    ("KServe", "serving.kserve.io", ("inferenceservices",), r"kserve-controller-manager"),
    ("LeaderWorkerSet", "leaderworkerset.x-k8s.io", ("leaderworkersets",), r"lws-controller-manager"),
    ("JobSet", "jobset.x-k8s.io", ("jobsets",), r"jobset-controller-manager"),
)
RDMA_RESOURCE = r"(^rdma/|/rdma|hca|mlnx|mellanox|sriov|/ib$|infiniband)"


def _conditions(o: dict[str, Any]) -> dict[str, str]:
    return {str(c.get("type")): str(c.get("status")) for c in (o.get("status") or {}).get("conditions") or []}


def _all_served(view: ClusterView, group: str, plurals: tuple[str, ...]) -> State:
    states = {view.served(group, p) for p in plurals}
    return "served" if states == {"served"} else "absent" if "absent" in states else "unknown"


def gateway_api(view: ClusterView) -> Outcome:
    check = "provision.gateway_api"
    state = _all_served(view, GW, ("gatewayclasses", "gateways", "httproutes"))
    classes = view.items(GW, "gatewayclasses")
    accepted = [c for c in classes if _conditions(c).get("Accepted") == "True"]
    evidence = (f"{GW} gatewayclasses/gateways/httproutes: {state}; GatewayClasses: "
                + (", ".join(f"{_name(c)} ({(c.get('spec') or {}).get('controllerName', '?')}, Accepted="
                             f"{_conditions(c).get('Accepted', '?')})" for c in classes) or "none"))
    if state == "served" and accepted:
        return Outcome(check, Status.PASSED, f"Gateway API served; GatewayClass {_name(accepted[0])} Accepted",
                       evidence=evidence)
    if state == "served":
        return _skip_or_fail(check, "Gateway API served but no GatewayClass is Accepted",
                             view.complete(GW, "gatewayclasses"), evidence)
    if state == "absent":
        return Outcome(check, Status.FAILED, "Gateway API (GatewayClass, Gateway, HTTPRoute) not served",
                       evidence=evidence)
    return Outcome(check, Status.SKIPPED, "unknown: discovery of gateway.networking.k8s.io was not captured",
                   evidence=evidence)


def inference_extension(view: ClusterView) -> Outcome:
    check = "provision.inference_extension"
    states = {g: view.served(g, "inferencepools")
              for g in ("inference.networking.k8s.io", "inference.networking.x-k8s.io")}
    evidence = "; ".join(f"inferencepools.{g}: {s}" for g, s in states.items())
    if "served" in states.values():
        return Outcome(check, Status.PASSED, "Gateway API Inference Extension (InferencePool) served",
                       evidence=evidence)
    if set(states.values()) == {"absent"}:
        return Outcome(check, Status.FAILED, "InferencePool is not served", evidence=evidence)
    return Outcome(check, Status.SKIPPED, "unknown: discovery of the inference extension groups was not captured",
                   evidence=evidence)


def rdma_networking(view: ClusterView, nodes: list[NodeInfo]) -> Outcome:
    import re

    check = "provision.rdma_networking"
    rx = re.compile(RDMA_RESOURCE)
    found = []
    for n in view.items("", "nodes"):
        alloc = (n.get("status") or {}).get("allocatable") or {}
        hits = [f"{r}={v}" for r, v in alloc.items() if rx.search(r) and str(v) not in ("0", "")]
        if hits:
            found.append(f"node {_name(n)}: {', '.join(hits)}")
    nads = view.items("k8s.cni.cncf.io", "network-attachment-definitions")
    if nads:
        found.append("NetworkAttachmentDefinitions: " + ", ".join(
            f"{(o.get('metadata') or {}).get('namespace', '')}/{_name(o)}" for o in nads[:10]))
    for s in view.items("resource.k8s.io", "resourceslices"):
        driver = str((s.get("spec") or {}).get("driver", ""))
        if "dranet" in driver or driver == "dra.net" or "rdma" in driver:
            found.append(f"ResourceSlice {_name(s)} (driver {driver})")
    if found:
        return Outcome(check, Status.PASSED, "RDMA / secondary-network resources present",
                       evidence="; ".join(found[:20]))
    complete = view.complete("", "nodes") and view.complete("k8s.cni.cncf.io", "network-attachment-definitions") \
        and view.complete("resource.k8s.io", "resourceslices")
    return _skip_or_fail(check, "no RDMA resources, NetworkAttachmentDefinitions or DRANET ResourceSlices",
                         complete)


def disaggregated_inference(view: ClusterView) -> Outcome:
    hints = sorted(n for n in view.crd_names() if n.startswith(("llminferenceservices.", "dynamographdeployments.")))
    return Outcome(
        "provision.disaggregated_inference", Status.SKIPPED,
        "ATTEST: no standard API shows disaggregated (prefill/decode) serving; the vendor's documentation is needed",
        evidence=("CRDs that may support it: " + ", ".join(hints)) if hints else None)


def _controllers(view: ClusterView, pattern: str) -> tuple[bool | None, str]:
    """(ready?, evidence): None when Deployments/DaemonSets were not listed in full and none matched Ready."""
    found = view.workloads(pattern)
    text = ", ".join(f"{w} ready {r}/{d}" for w, r, d in found)
    if any(r > 0 for _, r, _ in found):
        return True, text
    return (False if view.workloads_complete() else None), text or "no controller found"


def gang_scheduler(view: ClusterView) -> Outcome:
    check = "provision.gang_scheduler"
    notes, unknown = [], False
    for name, group, plurals, pattern in GANG_SCHEDULERS:
        state = _all_served(view, group, plurals) if group else "served"
        ready, text = _controllers(view, pattern)
        if state == "served" and ready:
            return Outcome(check, Status.PASSED, f"{name} installed and Running",
                           evidence=f"{group or name}: {', '.join(plurals) or 'no CRDs'} served; {text}")
        if state == "served" and group:
            notes.append(f"{name}: {group} served; {text}")
            unknown |= ready is None
        elif state == "unknown":
            unknown = True
    evidence = "; ".join(notes) or None
    if notes and not unknown:
        return Outcome(check, Status.FAILED, "gang scheduler CRDs registered but no controller Running",
                       evidence=evidence)
    if unknown:
        return Outcome(check, Status.SKIPPED, "unknown: " + ("scheduler CRDs registered, controller status not "
                       "captured" if notes else "discovery of gang scheduler groups was not captured"),
                       evidence=evidence)
    return Outcome(check, Status.FAILED, "no gang scheduler (Kueue, Volcano, KAI, coscheduling, YuniKorn) found")


def cluster_autoscaler(view: ClusterView, nodes: list[NodeInfo]) -> Outcome:
    check = "provision.cluster_autoscaler"
    ready, text = _controllers(view, r"cluster-autoscaler|^karpenter$")
    status_cm = view.items("", "configmaps")
    pools = view.items("karpenter.sh", "nodepools")
    found = []
    if ready:
        found.append(text)
    if status_cm:
        found.append("ConfigMap kube-system/cluster-autoscaler-status")
    if pools:
        found.append("Karpenter NodePools: " + ", ".join(_name(p) for p in pools[:10]))
    if found:
        return Outcome(check, Status.PASSED, "a cluster autoscaler is configured", evidence="; ".join(found))
    pool_labels = ("cloud.google.com/gke-nodepool", "eks.amazonaws.com/nodegroup", "kubernetes.azure.com/agentpool")
    labelled = sorted({k for n in view.items("", "nodes") for k in ((n.get("metadata") or {}).get("labels") or {})
                       if k in pool_labels})
    if labelled:
        return Outcome.skipped(check, "provider node pools seen but their autoscaling settings are not in the "
                               f"Kubernetes API (labels: {', '.join(labelled)}): attest, or run the active probe")
    complete = view.workloads_complete() and view.complete("", "configmaps") and \
        view.complete("karpenter.sh", "nodepools")
    return _skip_or_fail(check, "no cluster-autoscaler, status ConfigMap or Karpenter NodePool", complete,
                         text if text != "no controller found" else None)


def metrics_apis(view: ClusterView) -> Outcome:
    check = "provision.metrics_apis"
    groups = ("metrics.k8s.io", "custom.metrics.k8s.io", "external.metrics.k8s.io")
    states = view.groups_served(groups)
    for a in view.items("apiregistration.k8s.io", "apiservices"):  # an aggregated API must be Available
        g = str((a.get("spec") or {}).get("group") or "")
        if g in groups and _conditions(a).get("Available") == "False":
            states[g] = "absent"
    evidence = "; ".join(f"{g}: {s}" for g, s in states.items())
    if states["metrics.k8s.io"] == "served" and "served" in (states[groups[1]], states[groups[2]]):
        return Outcome(check, Status.PASSED, "resource and custom/external metrics APIs served", evidence=evidence)
    if "unknown" in states.values():
        return Outcome(check, Status.SKIPPED, "unknown: metrics API discovery not captured", evidence=evidence)
    missing = [g for g, s in states.items() if s != "served"]
    return Outcome(check, Status.FAILED, f"not served or not Available: {', '.join(missing)}", evidence=evidence)


def service_monitoring(view: ClusterView) -> Outcome:
    check = "provision.service_monitoring"
    options = (("monitoring.coreos.com", "servicemonitors"), ("monitoring.coreos.com", "podmonitors"),
               ("azmonitoring.coreos.com", "servicemonitors"), ("monitoring.googleapis.com", "podmonitorings"))
    states = {f"{p}.{g}": view.served(g, p) for g, p in options}
    evidence = "; ".join(f"{k}: {s}" for k, s in states.items())
    if "served" in states.values():
        return Outcome(check, Status.PASSED, "a Prometheus-style scraper for AI services is configured "
                       "(monitor CRDs served)", evidence=evidence)
    if set(states.values()) == {"absent"}:
        return Outcome(check, Status.FAILED, "no ServiceMonitor/PodMonitor (Prometheus operator or managed) "
                       "CRDs", evidence=evidence)
    return Outcome(check, Status.SKIPPED, "unknown: monitoring CRD discovery not captured", evidence=evidence)


def sandbox_runtimes(view: ClusterView) -> Outcome:
    check = "provision.sandbox_runtimes"
    classes = view.items("node.k8s.io", "runtimeclasses")
    sandboxed = [f"{_name(c)} (handler {c.get('handler')})" for c in classes
                 if any(h in str(c.get("handler", "")).lower() for h in ("runsc", "gvisor", "kata"))]
    if sandboxed:
        return Outcome(check, Status.PASSED, "sandboxed RuntimeClasses available",
                       evidence="RuntimeClasses: " + ", ".join(sandboxed))
    others = ", ".join(_name(c) for c in classes) or "none"
    return _skip_or_fail(check, "no gVisor or Kata RuntimeClass", view.complete("node.k8s.io", "runtimeclasses"),
                         f"RuntimeClasses: {others}")


def _webhooks_for(view: ClusterView, group: str) -> list[str]:
    out = []
    for plural in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        for cfg in view.items("admissionregistration.k8s.io", plural):
            for wh in cfg.get("webhooks") or []:
                if any(group in (r.get("apiGroups") or []) for r in wh.get("rules") or []):
                    out.append(f"{plural[:-len('webhookconfigurations')]} webhook {wh.get('name')}")
    return out


def ai_operator(view: ClusterView) -> Outcome:
    check = "provision.ai_operator"
    webhooks_complete = view.complete("admissionregistration.k8s.io", "validatingwebhookconfigurations") and \
        view.complete("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
    notes, unknown = [], False
    for name, group, plurals, pattern in AI_OPERATORS:
        state = _all_served(view, group, plurals)
        if state == "unknown":
            unknown = True
        if state != "served":
            continue
        ready, text = _controllers(view, pattern)
        hooks = _webhooks_for(view, group)
        evidence = f"{name}: {group} served; {text}; " + (", ".join(hooks[:3]) or "no webhook seen")
        if ready and hooks:
            return Outcome(check, Status.PASSED, f"{name}: CRDs registered, controller Running, webhooks "
                           "configured", evidence=evidence)
        notes.append(evidence)
        unknown |= ready is None or (not hooks and not webhooks_complete)
    evidence_all = "; ".join(notes) or None
    if unknown:
        return Outcome(check, Status.SKIPPED, "unknown: " + ("AI operator CRDs registered; its controller or "
                       "webhooks were not captured" if notes else "AI operator discovery not captured"),
                       evidence=evidence_all)
    if notes:
        return Outcome(check, Status.FAILED, "AI operator CRDs registered but controller or webhooks missing",
                       evidence=evidence_all)
    return Outcome(check, Status.FAILED, "no AI operator (Kubeflow Trainer, KubeRay, KServe, LWS, JobSet) found")
