"""ACTIVE probe of robust_controller: an AI operator's validating webhook refuses an invalid custom resource,
and its controller reconciles a valid one to its ready condition.

One `OperatorCase` per operator kaic knows (Kubeflow Trainer, KubeRay, JobSet, LeaderWorkerSet, KServe, Kueue,
KAITO): an object that passes the CRD's OpenAPI schema but breaks a rule only the operator's webhook checks
(the Go source is cited at each), the cheapest valid object (small pods from the profile's image, no
accelerator), and the condition that says it was reconciled. `OperatorWebhook.run` probes the installed
operators in order until one passes; every object it creates is deleted by name on the way out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kaic.cluster import (
    RUN_ID_LABEL,
    ApiResource,
    ClusterClient,
    ClusterError,
    DeadlineExceededError,
    Obj,
    conditions,
    labelled,
    plural_for,
    wait_until,
)
from kaic.results import Outcome, Status
from steps.provision.active import PROBE_LABEL, PodSettings, probe_pod
from steps.provision.active_platform import Clock, run_suffix

CHECK = "provision.operator_webhook"
LABEL = "operator"  # the probe label of every object (and pod) this probe creates
PORT = 8080
# An HTTP server on PORT from whatever the image has (kaic's image: Python; busybox: httpd).
HTTP_SERVER = (f"python3 -m http.server {PORT} || python -m http.server {PORT} || httpd -f -p {PORT} || "
               f"busybox httpd -f -p {PORT}")

ADMIT_S = 30.0  # how long a webhook's refusal of the valid object is retried

Build = Callable[[str, str, PodSettings], Obj]  # (name, version, settings) -> object


@dataclass(frozen=True)
class OperatorCase:
    """One operator's probe: an object its webhook must refuse, a valid one, and the condition that says the
    valid one was reconciled."""

    operator: str  # as reported
    name: str  # as the profile names it (probes.operators)
    group: str
    plural: str
    versions: tuple[str, ...]  # the API versions these objects are written for, preferred first
    namespaced: bool  # created in the probe's namespace; else cluster-scoped
    invalid: Build
    valid: Build
    ready_condition: str
    rule: str  # what the invalid object breaks (the operator's webhook message)
    prerequisites: Callable[[str, str, PodSettings], list[Obj]] = lambda name, version, s: []  # first in, last out
    webhook_optional: str = ""  # why a default install may have no webhook (a refusal legitimately absent)


# -- small pods from the profile's image ------------------------------------------------------------------
def _pod_spec(s: PodSettings, container: str, command: str, long_running: bool) -> Obj:
    """kaic's restricted probe pod (no accelerator, any node): `command` in container `container`; a
    long-running one keeps the default restartPolicy (Always), which Deployments and StatefulSets require."""
    spec: Obj = probe_pod("operator", s, 0, probe=LABEL)["spec"]
    spec.pop("nodeSelector", None)
    if long_running:
        spec.pop("restartPolicy")
    spec["containers"][0].update(name=container, command=["sh", "-c", command])
    return spec


def _template(s: PodSettings, container: str, command: str, long_running: bool = False) -> Obj:
    """A pod template whose pods carry the run id (teardown finds them if the operator leaves any)."""
    return {"metadata": {"labels": {PROBE_LABEL: LABEL, RUN_ID_LABEL: s.run_id}},
            "spec": _pod_spec(s, container, command, long_running)}


def _meta(name: str, s: PodSettings, namespaced: bool = True) -> Obj:
    meta: Obj = {"name": name, "labels": {PROBE_LABEL: LABEL}}
    if namespaced:
        meta["namespace"] = s.namespace
    return meta


def _obj(group: str, version: str, kind: str, name: str, s: PodSettings, **body: Any) -> Obj:
    return labelled({"apiVersion": f"{group}/{version}", "kind": kind, "metadata": _meta(name, s), **body},
                    s.run_id)


# -- Kubeflow Trainer v2: TrainJob -----------------------------------------------------------------------
TRAINER = "trainer.kubeflow.org"


def _runtime_ref(name: str) -> Obj:
    return {"apiGroup": TRAINER, "kind": "TrainingRuntime", "name": name}


def _training_runtime(name: str, version: str, s: PodSettings) -> list[Obj]:
    """A namespaced TrainingRuntime of one node whose `node` container exits 0 (the Trainer's runtime
    webhook wants replicas 1 and a container named `node` in the job labelled as the trainer ancestor)."""
    job = {"metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
           "spec": {"backoffLimit": 0, "template": _template(s, "node", "echo kaic operator probe")}}
    return [_obj(TRAINER, version, "TrainingRuntime", f"{name}-runtime", s, spec={
        "mlPolicy": {"numNodes": 1},
        "template": {"spec": {"replicatedJobs": [{"name": "node", "replicas": 1, "template": job}]}}})]


def _trainjob(missing_runtime: bool) -> Build:
    # Invalid: github.com/kubeflow/trainer pkg/webhooks/trainjob_webhook.go ValidateCreate calls the runtime's
    # ValidateObjects (pkg/runtime/core/trainingruntime.go), which refuses a runtimeRef to a TrainingRuntime that
    # does not exist: "specified trainingRuntime must be created before the TrainJob is created".
    def build(name: str, version: str, s: PodSettings) -> Obj:
        runtime = f"{name}-absent-runtime" if missing_runtime else f"{name}-runtime"
        return _obj(TRAINER, version, "TrainJob", name, s, spec={"runtimeRef": _runtime_ref(runtime)})
    return build


# -- KubeRay: RayCluster ----------------------------------------------------------------------------------
def _raycluster(duplicate_groups: bool) -> Build:
    # Invalid: ray-project/kuberay ray-operator/pkg/webhooks/v1/raycluster_webhook.go validateWorkerGroups:
    # "worker group names must be unique" (the CRD does not key workerGroupSpecs by groupName).
    # Valid: a head pod only. `ray.io/overwrite-container-cmd` keeps our command (no `ray start`, which the
    # image lacks), and our own probes stop KubeRay injecting its Ray health probes
    # (controllers/ray/common/pod.go); the status reports RayClusterProvisioned once all its pods are Ready.
    def build(name: str, version: str, s: PodSettings) -> Obj:
        head = _template(s, "ray-head", f"sleep {int(s.timeout_s) + 60}", long_running=True)
        always = {"exec": {"command": ["true"]}, "periodSeconds": 5}
        head["spec"]["containers"][0].update(readinessProbe=always, livenessProbe=always)
        spec: Obj = {"headGroupSpec": {"rayStartParams": {}, "template": head}}
        if duplicate_groups:
            worker = _template(s, "ray-worker", "sleep 1", long_running=True)
            group = {"groupName": "workers", "replicas": 0, "minReplicas": 0, "maxReplicas": 1,
                     "rayStartParams": {}, "template": worker}
            spec["workerGroupSpecs"] = [group, dict(group)]
        obj = _obj("ray.io", version, "RayCluster", name, s, spec=spec)
        obj["metadata"]["annotations"] = {"ray.io/overwrite-container-cmd": "true"}
        return obj
    return build


# -- JobSet ----------------------------------------------------------------------------------------------
def _jobset(missing_target: bool) -> Build:
    # Invalid: kubernetes-sigs/jobset pkg/webhooks/jobset_webhook.go ValidateCreate: a successPolicy target that
    # is not one of the replicatedJobs ("invalid replicatedJob name '...' does not appear in
    # .spec.ReplicatedJobs"). Valid: one Job of one pod that exits 0; the JobSet becomes Completed.
    def build(name: str, version: str, s: PodSettings) -> Obj:
        job = {"spec": {"parallelism": 1, "completions": 1, "backoffLimit": 0,
                        "template": _template(s, "probe", "echo kaic operator probe")}}
        spec: Obj = {"replicatedJobs": [{"name": "probe", "replicas": 1, "template": job}]}
        if missing_target:
            spec["successPolicy"] = {"operator": "All", "targetReplicatedJobs": ["absent"]}
        return _obj("jobset.x-k8s.io", version, "JobSet", name, s, spec=spec)
    return build


# -- LeaderWorkerSet ----------------------------------------------------------------------------------------
def _lws(size: int) -> Build:
    # Invalid: kubernetes-sigs/lws pkg/webhooks/leaderworkerset_webhook.go generalValidate: "size must be equal
    # or greater than 1" (the CRD has no minimum on leaderWorkerTemplate.size). Valid: one group of one pod
    # (the leader), which keeps running; the LeaderWorkerSet becomes Available.
    def build(name: str, version: str, s: PodSettings) -> Obj:
        worker = _template(s, "worker", f"sleep {int(s.timeout_s) + 60}", long_running=True)
        return _obj("leaderworkerset.x-k8s.io", version, "LeaderWorkerSet", name, s, spec={
            "replicas": 1, "leaderWorkerTemplate": {"size": size, "workerTemplate": worker}})
    return build


# -- KServe: InferenceService ----------------------------------------------------------------------------
def _isvc(min_replicas: int) -> Build:
    # Invalid: kserve/kserve pkg/apis/serving/v1beta1/inference_service_validation.go validateInferenceService ->
    # ComponentExtensionSpec.Validate -> validateReplicas (component.go): "'MinReplicas' cannot be less than 0"
    # (the CRD has no minimum). Valid: one predictor pod serving HTTP on PORT; the InferenceService becomes Ready.
    def build(name: str, version: str, s: PodSettings) -> Obj:
        pod = _pod_spec(s, "kserve-container", HTTP_SERVER, long_running=True)
        container = pod.pop("containers")[0]
        container["ports"] = [{"containerPort": PORT, "name": "http1", "protocol": "TCP"}]
        predictor = {**pod, "minReplicas": min_replicas, "maxReplicas": 1, "containers": [container],
                     "labels": {PROBE_LABEL: LABEL, RUN_ID_LABEL: s.run_id}}  # propagated to its pods
        return _obj("serving.kserve.io", version, "InferenceService", name, s, spec={"predictor": predictor})
    return build


# -- KAITO: Workspace ------------------------------------------------------------------------------------
def _workspace(with_inference: bool) -> Build:
    # Invalid: kaito-project/kaito api/v1beta1/workspace_validation.go validateCreate: "Either Inference or
    # Tuning must be specified, not neither". Valid: inference from our own pod template on nodes matching the
    # profile's accelerator selector (KAITO's bring-your-own-nodes mode); WorkspaceSucceeded once it runs.
    # With node auto-provisioning on (KAITO's default) its webhook also wants resource.instanceType, a VM SKU
    # kaic cannot choose: there the valid Workspace is refused too, and the probe reports that.
    def build(name: str, version: str, s: PodSettings) -> Obj:
        selector = dict(s.node_selector) or {"kubernetes.io/os": "linux"}
        obj = _obj("kaito.sh", version, "Workspace", name, s, resource={"labelSelector": {"matchLabels": selector}})
        if with_inference:
            obj["inference"] = {"template": _template(s, "inference", HTTP_SERVER, long_running=True)}
        return obj
    return build


# -- Kueue: ClusterQueue (cluster-scoped) -----------------------------------------------------------------
def _flavor(name: str) -> str:
    return name.rsplit("-", 1)[0] + "-flavor"


def _kueue_cluster_queue(quota: str) -> Build:
    # Invalid: kubernetes-sigs/kueue pkg/webhooks/clusterqueue_webhook.go (vclusterqueue.kb.io): a negative
    # nominalQuota, which the CRD schema accepts. Valid: selects no namespace, so it can never admit anything.
    def build(name: str, version: str, s: PodSettings) -> Obj:
        return {"apiVersion": f"kueue.x-k8s.io/{version}", "kind": "ClusterQueue",
                "metadata": {"name": name, "labels": {PROBE_LABEL: LABEL}},
                "spec": {"namespaceSelector": {"matchLabels": {"kaic.dev/none": "none"}},
                         "resourceGroups": [{"coveredResources": ["nvidia.com/gpu"], "flavors": [
                             {"name": _flavor(name), "resources": [{"name": "nvidia.com/gpu",
                                                                    "nominalQuota": quota}]}]}]}}
    return build


def _kueue_flavor(name: str, version: str, s: PodSettings) -> list[Obj]:
    return [{"apiVersion": f"kueue.x-k8s.io/{version}", "kind": "ResourceFlavor",
             "metadata": {"name": _flavor(name), "labels": {PROBE_LABEL: LABEL}}, "spec": {}}]


# In the order probed: the operators the requirement names first (Kubeflow, Ray), then the cheapest pod-based
# ones; Kueue's objects are cluster-scoped (the chart's Role does not grant them); KAITO may provision a node.
OPERATORS: tuple[OperatorCase, ...] = (
    OperatorCase("Kubeflow Trainer", "trainer", TRAINER, "trainjobs", ("v1alpha1",), True, _trainjob(True),
                 _trainjob(False), "Complete", "spec.runtimeRef names a TrainingRuntime that does not exist",
                 _training_runtime),
    OperatorCase("KubeRay", "kuberay", "ray.io", "rayclusters", ("v1",), True, _raycluster(True), _raycluster(False),
                 "RayClusterProvisioned", "two workerGroupSpecs share a groupName",
                 webhook_optional="KubeRay's default install (config/default, Helm webhook.enabled=false) registers "
                                  "no webhook"),
    OperatorCase("JobSet", "jobset", "jobset.x-k8s.io", "jobsets", ("v1alpha2",), True, _jobset(True), _jobset(False),
                 "Completed", "successPolicy.targetReplicatedJobs names a replicatedJob that does not exist"),
    OperatorCase("LeaderWorkerSet", "lws", "leaderworkerset.x-k8s.io", "leaderworkersets", ("v1",), True, _lws(0),
                 _lws(1), "Available", "leaderWorkerTemplate.size is 0"),
    OperatorCase("KServe", "kserve", "serving.kserve.io", "inferenceservices", ("v1beta1",), True, _isvc(-1), _isvc(1),
                 "Ready", "predictor.minReplicas is negative"),
    OperatorCase("Kueue", "kueue", "kueue.x-k8s.io", "clusterqueues", ("v1beta2", "v1beta1"), False,
                 _kueue_cluster_queue("-1"), _kueue_cluster_queue("1"), "Active", "a negative nominalQuota",
                 _kueue_flavor),
    OperatorCase("KAITO", "kaito", "kaito.sh", "workspaces", ("v1beta1", "v1alpha1"), True, _workspace(False),
                 _workspace(True), "WorkspaceSucceeded", "neither inference nor tuning is specified"),
)
OPERATOR_NAMES = tuple(c.name for c in OPERATORS)


def served_version(case: OperatorCase, resources: list[ApiResource]) -> str | None:
    """The first of the case's versions the API server serves for its resource, or None."""
    served = {r.version for r in resources if r.group == case.group and r.plural == case.plural}
    return next((v for v in case.versions if v in served), None)


def webhook_denied(refused: ClusterError | None) -> bool:
    """The API server's text for a validating webhook's refusal: `admission webhook "NAME" denied the request`."""
    text = str(refused or "")
    return "admission webhook" in text and "denied the request" in text


def judge_operator(refused: ClusterError | None, reconciled: dict[str, Any] | None, case: OperatorCase) -> tuple[
        Status, str]:
    if refused is None:
        optional = f" ({case.webhook_optional})" if case.webhook_optional else ""
        return Status.FAILED, (f"{case.operator}: an invalid {case.plural} object ({case.rule}) was accepted: no "
                               f"webhook refused it{optional}")
    if "failed calling webhook" in str(refused):
        return Status.FAILED, f"{case.operator}: its webhook could not be called (not running?): {refused}"
    if not webhook_denied(refused):
        return Status.FAILED, f"{case.operator}: the invalid object was refused, but not by a webhook: {refused}"
    if not reconciled or reconciled.get("status") != "True":
        return Status.FAILED, (f"{case.operator}: its webhook refused an invalid object, but a valid one was not "
                               f"reconciled to {case.ready_condition}")
    return Status.PASSED, (f"{case.operator}: its webhook refused an invalid {case.plural} object ({case.rule}) and "
                           f"a valid one was reconciled ({case.ready_condition}=True)")


@dataclass(frozen=True)
class Tried:
    """One operator's probe: its verdict and what was seen."""

    case: OperatorCase
    status: Status
    message: str
    evidence: str


def summarize(tried: list[Tried]) -> tuple[Status, str, str]:
    """The row from the operators tried (in order): passed when one passed; its message first, then every
    operator's result."""
    passed = [t for t in tried if t.status is Status.PASSED]
    results = "; ".join(f"{t.case.operator}: {t.status.value}" for t in tried)
    if passed:
        status, lead = Status.PASSED, passed[0].message
    else:
        status = Status.FAILED if any(t.status is Status.FAILED for t in tried) else Status.ERROR
        lead = " | ".join(t.message for t in tried)
    message = f"{lead} (tried {len(tried)}: {results})" if len(tried) > 1 or not passed else lead
    evidence = " | ".join(f"{t.case.operator} [{t.status.value}] {t.evidence}" for t in tried)
    return status, message, evidence


class OperatorWebhook:
    """robust_controller, ACTIVE: the installed operators probed in order (`operators`: profile names, default
    all) until one passes."""

    def __init__(self, client: ClusterClient, s: PodSettings, operators: tuple[str, ...] | None = None,
                 clock: Clock | None = None) -> None:
        unknown = [o for o in operators or () if o not in OPERATOR_NAMES]
        if unknown:
            raise ValueError(f"unknown operator(s) {unknown}; kaic probes {', '.join(OPERATOR_NAMES)}")
        self.client, self.s, self.clock = client, s, clock or Clock()
        self.cases = tuple(next(c for c in OPERATORS if c.name == o) for o in operators) if operators else OPERATORS
        self.prefix = f"kaic-{run_suffix(s.run_id)}"

    def run(self) -> Outcome:
        resources = self.client.api_resources()
        tried: list[Tried] = []
        absent: list[str] = []
        for case in self.cases:
            version = served_version(case, resources)
            if version is None:
                absent.append(case.operator)
                continue
            tried.append(self._probe(case, version, resources))
            if tried[-1].status is Status.PASSED:
                break
        if not tried:
            names = ", ".join(c.operator for c in self.cases)
            return Outcome.skipped(CHECK, f"no operator kaic can probe is installed (probes exist for: {names})")
        status, message, evidence = summarize(tried)
        untried = [c.operator for c in self.cases[self.cases.index(tried[-1].case) + 1:] if c.operator not in absent]
        evidence += (f" | not installed: {', '.join(absent)}" if absent else "") + \
            (f" | not tried (one passed): {', '.join(untried)}" if untried else "")
        return Outcome(CHECK, status, message, evidence=evidence)

    def _probe(self, case: OperatorCase, version: str, resources: list[ApiResource]) -> Tried:
        gv = f"{case.group}/{version}"
        ns = self.s.namespace if case.namespaced else None
        bad, good = f"{self.prefix}-{case.name}-invalid", f"{self.prefix}-{case.name}-valid"
        extra = case.prerequisites(good, version, self.s)
        refused: ClusterError | None = None
        reconciled: dict[str, Any] | None = None
        seen: list[dict[str, Any] | None] = [None]
        tried_valid = False

        def ready() -> bool:
            seen[0] = conditions(self.client.get(gv, case.plural, good, ns)).get(case.ready_condition)
            return bool(seen[0] and seen[0].get("status") == "True")

        try:
            for obj in extra:
                self.client.create(obj)
            try:
                self.client.create(case.invalid(bad, version, self.s))
            except ClusterError as exc:
                refused = exc
            if webhook_denied(refused):  # else the operator has already failed: no wait for its controller
                tried_valid = True
                self._admit(case.valid(good, version, self.s))
                with contextlib.suppress(DeadlineExceededError):
                    wait_until(ready, self.s.timeout_s, f"{case.plural} {good} to report {case.ready_condition}",
                               self.clock.poll_s, self.clock.now, self.clock.sleep)
                reconciled = seen[0]
        except ClusterError as exc:  # a prerequisite or the valid object refused (RBAC, a webhook): this one errs
            return Tried(case, Status.ERROR, f"{case.operator}: {exc}", f"{gv} {case.plural}: {exc}")
        finally:
            self._cleanup(gv, case.plural, (bad, good), ns, extra, resources)
        status, message = judge_operator(refused, reconciled, case)
        where = f"{gv} {case.plural}" + (f" in {ns}" if ns else "")
        evidence = (f"{where}: invalid {bad} ({case.rule}) -> " + (str(refused)[:320] if refused else "accepted")
                    + (f"; valid {good} -> {case.ready_condition}="
                       + (f"{reconciled.get('status')} ({reconciled.get('reason', '')})" if reconciled else "never")
                       if tried_valid else "; valid object not tried"))
        return Tried(case, status, message, evidence)

    def _admit(self, obj: Obj) -> None:
        """Create the valid object; a webhook's refusal is retried for ADMIT_S (a webhook reads from its informer
        cache, which may not hold the prerequisite just created), then raised."""
        last: list[ClusterError] = []

        def created() -> bool:
            try:
                self.client.create(obj)
            except ClusterError as exc:
                if not webhook_denied(exc):
                    raise
                last[:] = [exc]
                return False
            return True

        try:
            wait_until(created, ADMIT_S, "the valid object to be admitted", self.clock.poll_s, self.clock.now,
                       self.clock.sleep)
        except DeadlineExceededError:
            raise ClusterError(f"the valid object was refused too: {last[0]}", last[0].status) from None

    def _cleanup(self, gv: str, plural: str, names: tuple[str, ...], ns: str | None, extra: list[Obj],
                 resources: list[ApiResource]) -> None:
        for name in names:
            self.client.delete(gv, plural, name, ns)
        for obj in reversed(extra):
            meta = obj["metadata"]
            self.client.delete(obj["apiVersion"], plural_for(resources, obj["apiVersion"], obj["kind"]), meta["name"],
                               meta.get("namespace"))
