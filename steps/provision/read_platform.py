"""READ probes about the platform around accelerators: Gateway API and inference ingress, RDMA networking,
gang scheduling, autoscaling, metrics APIs and scraping, sandboxed runtimes, and AI operators.

Pure functions of a `ClusterView`, one Outcome each, evidence naming what decided it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kaic.catalog import evidence as evidence_rule
from kaic.hardware.nodes import NodeInfo
from kaic.results import Outcome, Status
from steps.provision.read_accelerators import _name, _skip_or_fail
from steps.provision.view import ClusterView, State, parse_time

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
    ("KAITO", "kaito.sh", ("workspaces",), r"kaito-workspace|kaito-controller"),
    ("Kueue", "kueue.x-k8s.io", ("workloads",), r"kueue-controller-manager|^kueue$"),
)
RDMA_RESOURCE = r"(^rdma/|/rdma|hca|mlnx|mellanox|sriov|/ib$|infiniband|^vpc\.amazonaws\.com/efa$)"
# GatewayClass controllerName -> the in-cluster controller's workload name pattern; None: run by the provider.
GATEWAY_CONTROLLERS: tuple[tuple[str, str | None], ...] = (
    ("gateway.envoyproxy.io/", r"envoy-gateway"),
    ("kgateway.dev/", r"kgateway"),
    ("solo.io/gloo-gateway", r"gloo"),
    ("istio.io/", r"istiod"),
    ("gateway.nginx.org/", r"nginx-gateway"),
    ("traefik.io/", r"traefik"),
    ("projectcontour.io/", r"contour"),
    ("io.cilium/", r"cilium-operator"),
    ("konghq.com/", r"kong"),
    ("application-networking.k8s.aws/", r"gateway-api-controller"),
    ("alb.networking.azure.io/", r"alb-controller"),
    ("networking.gke.io/", None),
)
# Collectors of Prometheus-format workload metrics: Prometheus itself (operator-managed or annotation-based),
# OpenTelemetry / ADOT collectors, and the managed agents of GKE (GMP), AKS (ama-metrics) and CloudWatch.
COLLECTORS = (r"^prometheus-(k8s|server|user-workload)|^prometheus-.*-prometheus$|^prometheus$|vmagent|"
              r"otel-collector|opentelemetry-collector|adot-collector|^collector$|gmp-operator|^ama-metrics|"
              r"cloudwatch-agent|grafana-agent|^alloy")
STATUS_MAX_AGE = timedelta(minutes=15)  # a status object older than this (at observation time) is stale


def _conditions(o: dict[str, Any]) -> dict[str, str]:
    return {str(c.get("type")): str(c.get("status")) for c in (o.get("status") or {}).get("conditions") or []}


def _all_served(view: ClusterView, group: str, plurals: tuple[str, ...]) -> State:
    states = {view.served(group, p) for p in plurals}
    return "served" if states == {"served"} else "absent" if "absent" in states else "unknown"


def _gateway_controller(view: ClusterView, controller: str) -> tuple[bool | None, str]:
    """Is the GatewayClass's controller running? (True/False/None unknown, what was seen)."""
    for prefix, pattern in GATEWAY_CONTROLLERS:
        if controller.startswith(prefix):
            if pattern is None:
                return True, f"{controller} is run by the provider (no in-cluster controller)"
            ready, text = _controllers(view, pattern)
            return ready, text
    return None, f"controller {controller} not recognized"


def _current(obj: dict[str, Any], condition: str) -> bool:
    """The condition is True and was written for the object's current generation (not left stale)."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == condition and c.get("status") == "True":
            seen, gen = c.get("observedGeneration"), (obj.get("metadata") or {}).get("generation")
            return seen is None or gen is None or int(seen) >= int(gen)
    return False


def gateway_api(view: ClusterView) -> Outcome:
    check = "provision.gateway_api"
    state = _all_served(view, GW, ("gatewayclasses", "gateways", "httproutes"))
    classes = view.items(GW, "gatewayclasses")
    notes, live = [], []
    for c in classes:
        controller = str((c.get("spec") or {}).get("controllerName", "?"))
        accepted = _current(c, "Accepted")
        ready, text = _gateway_controller(view, controller) if accepted else (None, "")
        notes.append(f"{_name(c)} ({controller}, Accepted={_conditions(c).get('Accepted', '?')}"
                     + (f"; {text}" if text else "") + ")")
        if accepted and ready is not False:
            live.append((c, ready))
    evidence = f"{GW} gatewayclasses/gateways/httproutes: {state}; GatewayClasses: " + ("; ".join(notes) or "none")
    missing = "an HTTPRoute with a weighted split and a header match routing real requests as declared"
    if state == "served" and live:
        c, ready = live[0]
        how = "its controller Running" if ready else "its controller not identified"
        return evidence_rule.presence(check, f"Gateway API served; GatewayClass {_name(c)} Accepted, {how}",
                                      missing, evidence)
    if state == "served" and any(_conditions(c).get("Accepted") == "True" for c in classes):
        return Outcome(check, Status.FAILED, "Gateway API served, but every Accepted GatewayClass is stale: its "
                       "controller has no ready replica or the condition is for an older generation",
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
        return evidence_rule.presence(check, "Gateway API Inference Extension (InferencePool) served",
                                      "a request routed to the served model through an InferencePool", evidence)
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
        return evidence_rule.presence(check, "RDMA / EFA / secondary-network resources advertised",
                                      "a pod given a second interface moving data over it", "; ".join(found[:20]))
    complete = view.complete("", "nodes") and view.complete("k8s.cni.cncf.io", "network-attachment-definitions") \
        and view.complete("resource.k8s.io", "resourceslices")
    return _skip_or_fail(check, "no RDMA or EFA resources, NetworkAttachmentDefinitions or DRANET ResourceSlices",
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
            return evidence_rule.presence(
                check, f"{name} installed and its controller Running",
                "a gang admitted all together and an over-sized gang with no pod Running (provision.gang_admission)",
                f"{group or name}: {', '.join(plurals) or 'no CRDs'} served; {text}")
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


def _status_time(cm: dict[str, Any]) -> datetime | None:
    """When the cluster-autoscaler last wrote its status ConfigMap (annotation, else the status text)."""
    meta = cm.get("metadata") or {}
    t = parse_time((meta.get("annotations") or {}).get("cluster-autoscaler.kubernetes.io/last-updated", "")
                   .replace(" +0000 UTC", "Z").replace(" ", "T"))
    if t is not None:
        return t
    import re

    m = re.search(r"(?:^time:|status at)\s*(\S+ \S+)", str((cm.get("data") or {}).get("status", "")), re.M)
    return parse_time(m.group(1).replace(" ", "T") + "Z") if m else None


def _recent(t: datetime | None, now: datetime | None) -> bool:
    return t is not None and now is not None and now - t <= STATUS_MAX_AGE


def cluster_autoscaler(view: ClusterView, nodes: list[NodeInfo]) -> Outcome:
    check = "provision.cluster_autoscaler"
    ready, text = _controllers(view, r"cluster-autoscaler|^karpenter$")
    now = view.observed_at()
    found: list[str] = []
    stale: list[str] = []
    if ready:
        found.append(text)
    for cm in view.items("", "configmaps"):
        t = _status_time(cm)
        where = f"ConfigMap kube-system/{_name(cm)} written {t.isoformat() if t else 'at an unknown time'}"
        (found if _recent(t, now) else stale).append(where)
    pools = [p for p in view.items("karpenter.sh", "nodepools") if _current(p, "Ready")]
    if pools:
        found.append("Karpenter NodePools Ready: " + ", ".join(_name(p) for p in pools[:10]))
    missing = "N+1 accelerator pods on an N-node pool: the pool grows, the pending pod runs, the pool shrinks back"
    stale_note = f"; stale, not counted: {'; '.join(stale)}" if stale else ""
    if found:
        return evidence_rule.presence(check, "a cluster autoscaler is configured", missing,
                                      "; ".join(found) + stale_note)
    pool_labels = ("cloud.google.com/gke-nodepool", "eks.amazonaws.com/nodegroup", "kubernetes.azure.com/agentpool")
    labelled = sorted({k for n in view.items("", "nodes") for k in ((n.get("metadata") or {}).get("labels") or {})
                       if k in pool_labels})
    if labelled:
        return evidence_rule.presence(check, "provider node pools seen; their autoscaling settings are not in the "
                                      f"Kubernetes API (labels: {', '.join(labelled)})", missing,
                                      stale_note.lstrip("; ") or None)
    complete = view.workloads_complete() and view.complete("", "configmaps") and \
        view.complete("karpenter.sh", "nodepools")
    detail = "; ".join(x for x in (text if text != "no controller found" else "", stale_note.lstrip("; ")) if x)
    return _skip_or_fail(check, "no running cluster-autoscaler, recent status ConfigMap or Ready Karpenter "
                         "NodePool", complete, detail or None)


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
        return evidence_rule.presence(check, "resource and custom/external metrics APIs served",
                                      "an HPA on a custom metric scaling accelerator pods up, then down", evidence)
    if "unknown" in states.values():
        return Outcome(check, Status.SKIPPED, "unknown: metrics API discovery not captured", evidence=evidence)
    missing = [g for g, s in states.items() if s != "served"]
    return Outcome(check, Status.FAILED, f"not served or not Available: {', '.join(missing)}", evidence=evidence)


def service_monitoring(view: ClusterView) -> Outcome:
    """A collector of Prometheus-format workload metrics must be Running: Prometheus (operator-managed or
    annotation-based), an OpenTelemetry collector or a managed agent. Monitor CRDs alone collect nothing."""
    check = "provision.service_monitoring"
    options = (("monitoring.coreos.com", "servicemonitors"), ("monitoring.coreos.com", "podmonitors"),
               ("azmonitoring.coreos.com", "servicemonitors"), ("monitoring.googleapis.com", "podmonitorings"),
               ("opentelemetry.io", "opentelemetrycollectors"))
    states = {f"{p}.{g}": view.served(g, p) for g, p in options}
    collectors = view.workloads(COLLECTORS)
    running = [f"{w} ready {r}/{d}" for w, r, d in collectors if r > 0]
    idle = [f"{w} ready {r}/{d}" for w, r, d in collectors if r == 0]
    crds = [k for k, st in states.items() if st == "served"]
    evidence = "; ".join(x for x in ("collectors: " + (", ".join(running + idle) or "none"),
                                     "monitor CRDs: " + (", ".join(crds) or "none")) if x)
    missing = "the served model's requests counted in the platform's monitoring (serve.metrics_collected)"
    if running:
        return evidence_rule.presence(check, "a metrics collector is Running", missing, evidence)
    if not view.workloads_complete():
        return Outcome(check, Status.SKIPPED, "unknown: Deployments/DaemonSets not captured in full, so kaic "
                       "cannot tell whether a metrics collector runs", evidence=evidence)
    if crds or idle:
        return Outcome(check, Status.FAILED, "monitor CRDs or collectors installed, but no collector (Prometheus, "
                       "OpenTelemetry, managed agent) has a ready replica", evidence=evidence)
    return Outcome(check, Status.FAILED, "no metrics collector (Prometheus, OpenTelemetry, managed agent) and no "
                   "monitor CRDs", evidence=evidence)


def sandbox_runtimes(view: ClusterView) -> Outcome:
    check = "provision.sandbox_runtimes"
    classes = view.items("node.k8s.io", "runtimeclasses")
    sandboxed = [f"{_name(c)} (handler {c.get('handler')})" for c in classes
                 if any(h in str(c.get("handler", "")).lower() for h in ("runsc", "gvisor", "kata"))]
    if sandboxed:
        return evidence_rule.presence(check, "sandboxed RuntimeClasses defined",
                                      "a sandboxed pod running that cannot see host processes",
                                      "RuntimeClasses: " + ", ".join(sandboxed))
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
    """An AI operator's CRDs registered and its controller Running (webhooks where it has them: KubeRay ships
    none by default). Still only presence: the plan wants an invalid CR rejected and a valid one reconciled."""
    check = "provision.ai_operator"
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
        if ready:
            return evidence_rule.presence(check, f"{name}: CRDs registered, controller Running"
                                          + (", webhooks configured" if hooks else ""),
                                          "an invalid custom resource rejected by the operator's webhook and a valid "
                                          "one reconciled to Ready (provision.operator_webhook)", evidence)
        notes.append(evidence)
        unknown |= ready is None
    evidence_all = "; ".join(notes) or None
    if unknown:
        return Outcome(check, Status.SKIPPED, "unknown: " + ("AI operator CRDs registered; its controller was not "
                       "captured" if notes else "AI operator discovery not captured"), evidence=evidence_all)
    if notes:
        return Outcome(check, Status.FAILED, "AI operator CRDs registered but no controller Running",
                       evidence=evidence_all)
    return Outcome(check, Status.FAILED, "no AI operator (Kubeflow Trainer, KubeRay, KServe, LWS, JobSet, KAITO, "
                   "Kueue) found")
