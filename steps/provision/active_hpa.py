"""ACTIVE probe of `pod_autoscaling` (KAR-0057): an HPA on a custom metric scales accelerator pods up, then down.

Before creating anything the metrics API the HPA will read must be served (`custom.metrics.k8s.io` for a Pods
metric, `external.metrics.k8s.io` for an External one); if not, the row fails naming it. Then a Deployment of
one accelerator pod whose container keeps its device busy for `load_s` seconds and then idles
(`python -m kaic.hardware.burn`), and an autoscaling/v2 HPA on the profile's metric (default: the per-pod
`DCGM_FI_DEV_GPU_UTIL` a prometheus-adapter serves from the DCGM exporter) with a target the load exceeds and
a short scale-down stabilization window. Passed only when more than one replica was seen Ready and, once the
load stopped, the HPA scaled the Deployment back to one. The seconds from the first pod Ready (its load
began) until a second one was Ready are recorded (`hpa_time_to_scale_up_s`). An HPA condition that stays
False (ScalingActive, e.g. FailedGetPodsMetric; AbleToScale) fails the row with the controller's message.

`sample`, `summarize`, `finished` and `judge_hpa` are pure (a timeline of HPA + Deployment observations in,
a verdict out); `PodAutoscaling` creates the objects through a ClusterClient, samples them with the
profile's deadlines and always deletes what it created (run-id label).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from kaic.cluster import RUN_ID_LABEL, ClusterClient, Obj, conditions, labelled, run_selector, wait_until
from kaic.podsecurity import container_security, pod_security
from kaic.results import Outcome, Status
from steps.provision.active import PROBE_LABEL, PodSettings, pending_reason
from steps.provision.active_platform import Clock, run_suffix

CHECK = "provision.hpa_custom_metric"
METRIC = "hpa_time_to_scale_up_s"
PROBE = "hpa"
API_GROUP = {"Pods": "custom.metrics.k8s.io", "External": "external.metrics.k8s.io"}
# HPA conditions whose False status means it cannot scale (the controller says why in reason and message).
BLOCKING = ("AbleToScale", "ScalingActive")


@dataclass(frozen=True)
class HpaPlan:
    """What the probe asks of the HPA (the profile's `probes.hpa`)."""

    metric: str = "DCGM_FI_DEV_GPU_UTIL"
    metric_type: Literal["Pods", "External"] = "Pods"
    target: float = 50.0  # AverageValue: the per-pod value the HPA holds
    selector: dict[str, str] = field(default_factory=dict)  # External: the metric series' labels
    load_s: float = 180.0  # each pod keeps its accelerator busy this long after it starts, then idles
    max_replicas: int = 2
    scale_down_window_s: int = 60  # behavior.scaleDown.stabilizationWindowSeconds
    up_timeout_s: float = 600.0  # from the first pod Ready until a second one is
    down_timeout_s: float = 600.0  # from the growth until the HPA is back at one replica
    condition_grace_s: float = 180.0  # an HPA condition False this long ends the watch (metrics lag at start)

    @property
    def describe(self) -> str:
        sel = f"{{{','.join(f'{k}={v}' for k, v in sorted(self.selector.items()))}}}" if self.selector else ""
        return f"{self.metric_type} metric {self.metric}{sel}, target average {self.target:g}"


# -- objects ---------------------------------------------------------------------------------------------
def _quantity(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def load_deployment(name: str, s: PodSettings, plan: HpaPlan) -> Obj:
    """One replica of a pod with one accelerator, keeping it busy for `plan.load_s` then idling."""
    selector = {PROBE_LABEL: PROBE, RUN_ID_LABEL: s.run_id}
    spec: Obj = {
        "terminationGracePeriodSeconds": 1,
        "automountServiceAccountToken": False,
        "securityContext": pod_security(),
        "containers": [{
            "name": "load", "image": s.image,
            "command": ["python", "-m", "kaic.hardware.burn", "--seconds", _quantity(plan.load_s)],
            "resources": {"requests": {"cpu": "100m", "memory": "512Mi"},
                          "limits": {"memory": "4Gi", s.resource_name: "1"}},
            "securityContext": container_security(),
            "terminationMessagePolicy": "FallbackToLogsOnError",  # a crash's last words reach the pod's status
        }],
    }
    if s.node_selector:
        spec["nodeSelector"] = dict(s.node_selector)
    if s.tolerations:
        spec["tolerations"] = [dict(t) for t in s.tolerations]
    deployment: Obj = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": s.namespace, "labels": {PROBE_LABEL: PROBE}},
        "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": dict(selector)}, "spec": spec}},
    }
    return labelled(deployment, s.run_id)


def hpa_object(name: str, s: PodSettings, plan: HpaPlan) -> Obj:
    """An autoscaling/v2 HPA on the Deployment `name`: 1..max_replicas on the plan's metric."""
    target = {"type": "AverageValue", "averageValue": _quantity(plan.target)}
    ident: Obj = {"name": plan.metric}
    if plan.metric_type == "External":
        if plan.selector:
            ident["selector"] = {"matchLabels": dict(plan.selector)}
        metric: Obj = {"type": "External", "external": {"metric": ident, "target": target}}
    else:
        metric = {"type": "Pods", "pods": {"metric": ident, "target": target}}
    step = {"type": "Pods", "value": 1, "periodSeconds": 15}
    hpa: Obj = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": s.namespace, "labels": {PROBE_LABEL: PROBE}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1, "maxReplicas": plan.max_replicas, "metrics": [metric],
            "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0, "policies": [step]},
                         "scaleDown": {"stabilizationWindowSeconds": plan.scale_down_window_s,
                                       "policies": [step]}},
        },
    }
    return labelled(hpa, s.run_id)


def missing_api(groups: Sequence[str], apiservices: Sequence[Obj], plan: HpaPlan) -> str | None:
    """Why the HPA could not read the plan's metric, None when its API is served: discovery lists the group
    (`groups`) or its APIService is Available, and no APIService of the group is Available=False."""
    group = API_GROUP[plan.metric_type]
    available: dict[str, dict[str, str]] = {}
    for a in apiservices:
        if str((a.get("spec") or {}).get("group") or "") == group:
            available[str((a.get("metadata") or {}).get("name"))] = conditions(a).get("Available") or {}
    for name, c in sorted(available.items()):
        if c.get("status") == "False":
            return (f"{group} is registered (APIService {name}) but not Available: {c.get('reason', '')}: "
                    f"{c.get('message', '')}").rstrip(": ")
    if group in groups or any(c.get("status") == "True" for c in available.values()):
        return None
    registered = f"APIService {', '.join(sorted(available))} is not Available" if available else \
        "no APIService registers it"
    return (f"{group} is not served ({registered}): an HPA cannot read the {plan.metric_type} metric {plan.metric}; "
            "the platform needs a metrics adapter serving it (e.g. prometheus-adapter)")


# -- what was observed ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One look at the HPA and its Deployment."""

    desired: int  # the HPA's status.desiredReplicas
    replicas: int  # the Deployment's spec.replicas (what the HPA set)
    ready: int  # the Deployment's status.readyReplicas
    blocked: str = ""  # "ScalingActive=False FailedGetPodsMetric: <the controller's message>", else ""
    current: str = ""  # the metric value the HPA last read (status.currentMetrics)
    pending: str = ""  # why a pod is not Running (the scheduler's or kubelet's words)


def _current(hpa: Obj) -> str:
    for m in (hpa.get("status") or {}).get("currentMetrics") or []:
        src = m.get(str(m.get("type", "")).lower()) or {}
        value = (src.get("current") or {}).get("averageValue") or (src.get("current") or {}).get("value")
        if value is not None:
            return str(value)
    return ""


def _pending(pods: Sequence[Obj]) -> str:
    for p in pods:
        status = p.get("status") or {}
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                last = str(((cs.get("lastState") or {}).get("terminated") or {}).get("message") or "").strip()
                return f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ") + \
                    (f" (it last exited with: {last.splitlines()[-1]})" if last else "")
        if status.get("phase") in (None, "", "Pending"):
            return pending_reason(p)
    return ""


def sample(hpa: Obj | None, deployment: Obj | None, pods: Sequence[Obj] = ()) -> Sample:
    h, d = hpa or {}, deployment or {}
    blocked = ""
    for c in (h.get("status") or {}).get("conditions") or []:
        if c.get("type") in BLOCKING and c.get("status") == "False":
            blocked = f"{c['type']}=False {c.get('reason', '')}: {c.get('message', '')}".rstrip(": ")
            break
    return Sample(int((h.get("status") or {}).get("desiredReplicas") or 0),
                  int((d.get("spec") or {}).get("replicas") or 0),
                  int((d.get("status") or {}).get("readyReplicas") or 0), blocked, _current(h), _pending(pods))


@dataclass(frozen=True)
class HpaSeen:
    """A timeline of samples, summed up; times in seconds since the objects were created."""

    elapsed: float = 0.0
    first_ready_s: float | None = None  # the first pod Ready: its load began
    grown_s: float | None = None  # more than one replica Ready
    shrunk_s: float | None = None  # after growing, the HPA set the Deployment back to one replica
    peak_ready: int = 0
    peak_desired: int = 0
    blocked: str = ""  # the HPA condition False at the last sample
    blocked_for: float = 0.0  # how long it has been False without a break, since the first pod was Ready
    last: Sample | None = None
    last_current: str = ""  # the last metric value the HPA reported
    pending: str = ""  # why a pod was not Running or its container waited, at the last sample

    @property
    def up_s(self) -> float | None:
        if self.grown_s is None or self.first_ready_s is None:
            return None
        return self.grown_s - self.first_ready_s


def summarize(timeline: Sequence[tuple[float, Sample]]) -> HpaSeen:
    seen = HpaSeen()
    blocked_since: float | None = None
    for t, s in timeline:
        first = seen.first_ready_s if seen.first_ready_s is not None else (t if s.ready >= 1 else None)
        grown = seen.grown_s if seen.grown_s is not None else (t if s.ready > 1 else None)
        shrunk = seen.shrunk_s
        if shrunk is None and grown is not None and t > grown and s.replicas == 1 and s.desired <= 1:
            shrunk = t
        # Counted from the first Ready pod on: before it, no pod can have a metric for the HPA to read.
        blocked_since = (blocked_since if blocked_since is not None else t) if s.blocked and first is not None \
            else None
        seen = HpaSeen(t, first, grown, shrunk, max(seen.peak_ready, s.ready), max(seen.peak_desired, s.desired),
                       s.blocked, t - blocked_since if blocked_since is not None else 0.0, s,
                       s.current or seen.last_current, s.pending)
    return seen


def finished(seen: HpaSeen, plan: HpaPlan, start_timeout_s: float) -> bool:
    """Whether the watch is over: shrunk back, blocked too long, or a phase ran past its deadline."""
    if seen.shrunk_s is not None or (seen.blocked and seen.blocked_for >= plan.condition_grace_s):
        return True
    if seen.first_ready_s is None:
        return seen.elapsed >= start_timeout_s
    if seen.grown_s is None:
        return seen.elapsed - seen.first_ready_s >= plan.up_timeout_s
    return seen.elapsed - seen.grown_s >= plan.down_timeout_s


def judge_hpa(seen: HpaSeen, plan: HpaPlan, start_timeout_s: float) -> tuple[Status, str]:
    """Grown above one Ready replica, then scaled back to one: passed. Anything less: failed, saying what."""
    blocked = f"the HPA could not scale: {seen.blocked}" if seen.blocked else ""
    value = f" (the HPA last read {seen.last_current}, target {plan.target:g})" if seen.last_current else ""
    if seen.first_ready_s is None:
        why = f": {seen.pending}" if seen.pending else ""
        return Status.FAILED, (f"the Deployment's first pod was not Ready within {start_timeout_s:.0f}s{why}"
                               + (f"; {blocked}" if blocked else ""))
    if seen.grown_s is None:
        if blocked:
            return Status.FAILED, f"{blocked} (for {seen.blocked_for:.0f}s, with 1 pod Ready)"
        if seen.peak_desired > 1:
            why = f": {seen.pending}" if seen.pending else ""
            return Status.FAILED, (f"the HPA asked for {seen.peak_desired} replicas but no second pod was Ready "
                                   f"within {plan.up_timeout_s:.0f}s{why}")
        return Status.FAILED, (f"the HPA kept 1 replica for {plan.up_timeout_s:.0f}s after its pod's load began"
                               f"{value}: it did not scale up")
    grew = (f"the HPA on the {plan.describe} scaled the Deployment from 1 to {seen.peak_ready} Ready replicas "
            f"{seen.up_s:.1f}s after the load began")
    if seen.shrunk_s is None:
        why = f"; {blocked}" if blocked else value
        return Status.FAILED, (f"{grew}, but it did not scale back to 1 within {plan.down_timeout_s:.0f}s "
                               f"after that{why}")
    return Status.PASSED, f"{grew}, and back to 1 replica {seen.shrunk_s - seen.grown_s:.1f}s later once it idled"


class PodAutoscaling:
    """Runs the probe; its HPA and Deployment (and their pods) are deleted on the way out, whatever happens."""

    def __init__(self, client: ClusterClient, s: PodSettings, plan: HpaPlan, clock: Clock | None = None) -> None:
        self.client, self.s, self.plan, self.clock = client, s, plan, clock or Clock()
        self.selector = f"{run_selector(s.run_id)},{PROBE_LABEL}={PROBE}"
        self.name = f"kaic-{run_suffix(s.run_id)}-{PROBE}"

    def missing(self) -> str | None:
        groups = {r.group for r in self.client.api_resources()}
        return missing_api(sorted(groups), self.client.list("apiregistration.k8s.io/v1", "apiservices"), self.plan)

    def _sample(self) -> Sample:
        ns = self.s.namespace
        return sample(self.client.get("autoscaling/v2", "horizontalpodautoscalers", self.name, ns),
                      self.client.get("apps/v1", "deployments", self.name, ns),
                      self.client.list("v1", "pods", ns, self.selector))

    def _left(self) -> list[str]:
        ns = self.s.namespace
        return [f"{plural}/{(o.get('metadata') or {}).get('name')}"
                for gv, plural in (("autoscaling/v2", "horizontalpodautoscalers"), ("apps/v1", "deployments"),
                                   ("apps/v1", "replicasets"), ("v1", "pods"))
                for o in self.client.list(gv, plural, ns, self.selector)]

    def cleanup(self) -> None:
        """The HPA first (so it stops scaling), the Deployment, then whatever pods its ReplicaSet left."""
        ns = self.s.namespace
        for gv, plural in (("autoscaling/v2", "horizontalpodautoscalers"), ("apps/v1", "deployments"),
                           ("apps/v1", "replicasets"), ("v1", "pods")):
            self.client.delete_collection(gv, plural, ns, self.selector)
        wait_until(lambda: not self._left(), self.s.timeout_s, f"the HPA probe's objects ({self.selector}) to be "
                   "deleted", self.clock.poll_s, self.clock.now, self.clock.sleep)

    def watch(self) -> HpaSeen:
        """Create the Deployment and the HPA, sample them until `finished`; always clean up."""
        timeline: list[tuple[float, Sample]] = []
        try:
            began = self.clock.now()
            self.client.create(load_deployment(self.name, self.s, self.plan))
            self.client.create(hpa_object(self.name, self.s, self.plan))
            while True:
                timeline.append((self.clock.now() - began, self._sample()))
                seen = summarize(timeline)
                if finished(seen, self.plan, self.s.timeout_s):
                    return seen
                self.clock.sleep(self.clock.poll_s)
        finally:
            self.cleanup()

    def run(self) -> Outcome:
        missing = self.missing()
        if missing:
            return Outcome(CHECK, Status.FAILED, missing, evidence=f"HPA on the {self.plan.describe}: not created")
        seen = self.watch()
        return self.outcome(seen)

    def outcome(self, seen: HpaSeen) -> Outcome:
        status, message = judge_hpa(seen, self.plan, self.s.timeout_s)
        evidence = (f"Deployment and HPA {self.s.namespace}/{self.name}: 1 pod of 1 {self.s.resource_name}, load "
                    f"{self.plan.load_s:.0f}s per pod; HPA 1..{self.plan.max_replicas} on the {self.plan.describe}, "
                    f"scale-down window {self.plan.scale_down_window_s}s; most Ready {seen.peak_ready}, most "
                    f"desired {seen.peak_desired}" + (f"; last metric value {seen.last_current}"
                                                      if seen.last_current else ""))
        if seen.up_s is None:
            return Outcome(CHECK, status, message, evidence=evidence)
        return Outcome(CHECK, status, message, metric=METRIC, value=round(seen.up_s, 1), unit="s", evidence=evidence)
