"""Run each step's cluster code against one simulated cluster, recording every API call with its scope.

`RunCluster` is `kaic.cluster.fake.FakeCluster` (schema-validated objects, simulated scheduler, device
plugin and Kueue) plus the visible effects of the controllers a full platform runs: KServe, Kubeflow
Trainer, Gateway API and Kueue types are served; an applied Job gets its worker pods; a Job or TrainJob
is Complete once read (rank 0's result written to the object store, as the workers would); a Gateway is
Programmed with an address and an HTTPRoute is Accepted (no data plane answers requests: the routing probe
makes all its API calls, then fails for want of answers); each GPU node runs a dcgm-exporter pod whose
devices read busy while a pod holds them; the AI operators' validating webhooks refuse what theirs would
(`WEBHOOKS`, each rule restated from the operator's Go code) and JobSet, LWS, RayCluster and Workspace objects
read reconciled. The real step code runs through it: provision (discovery, READ listings, fingerprint, the
ACTIVE probes incl. gang, pod autoscaling, the exporter scrape, Gateway routing and each namespaced operator),
train (Job with a worker killed after a checkpoint, and TrainJob), serve (InferenceService, Gateway lookup,
HTTPRoute), teardown (sweep and capacity). Clocks are simulated, so it takes well under a second after imports.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kaic.cluster import ApiResource, ClusterError, Obj
from kaic.cluster.fake import FakeCluster
from kaic.deploy_check.rbac import ScopedCall, ScopedRecorder
from kaic.results import Outcome

NAMESPACE = "kaic"
RUN_ID = "kaic-conformance-x7k2p"
GATEWAY = "gateway-system/inference"
EXPORTER_NS = "gpu-operator"

EXTRA_TYPES = (
    ApiResource("", "v1", "Service", "services", True),
    ApiResource("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
    ApiResource("serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices", True),
    ApiResource("trainer.kubeflow.org", "v1alpha1", "TrainJob", "trainjobs", True),
    ApiResource("kubeflow.org", "v1", "PyTorchJob", "pytorchjobs", True),
    ApiResource("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True),
    ApiResource("scheduling.x-k8s.io", "v1alpha1", "PodGroup", "podgroups", True),
    ApiResource("kueue.x-k8s.io", "v1beta1", "LocalQueue", "localqueues", True),
    # the AI operators the operator_webhook probe knows, namespaced ones (Kueue's ClusterQueues are cluster-scoped,
    # which the chart's Role does not grant: not served here)
    ApiResource("trainer.kubeflow.org", "v1alpha1", "TrainingRuntime", "trainingruntimes", True),
    ApiResource("ray.io", "v1", "RayCluster", "rayclusters", True),
    ApiResource("jobset.x-k8s.io", "v1alpha2", "JobSet", "jobsets", True),
    ApiResource("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", "leaderworkersets", True),
    ApiResource("kaito.sh", "v1beta1", "Workspace", "workspaces", True),
    # a metrics adapter's custom metrics API (prometheus-adapter lists one resource per metric), which the
    # pod_autoscaling probe needs before it creates anything
    ApiResource("custom.metrics.k8s.io", "v1beta2", "MetricValueList", "pods/DCGM_FI_DEV_GPU_UTIL", True),
)


def _jobset_denial(obj: Obj) -> str | None:
    spec = obj.get("spec") or {}
    names = {r.get("name") for r in spec.get("replicatedJobs") or []}
    for target in (spec.get("successPolicy") or {}).get("targetReplicatedJobs") or []:
        if target not in names:
            return f"invalid replicatedJob name '{target}' does not appear in .spec.ReplicatedJobs"
    return None


def _lws_denial(obj: Obj) -> str | None:
    size = ((obj.get("spec") or {}).get("leaderWorkerTemplate") or {}).get("size", 1)
    return None if size >= 1 else f"spec.leaderWorkerTemplate.size: Invalid value: {size}: size must be equal or " \
        "greater than 1"


def _raycluster_denial(obj: Obj) -> str | None:
    groups = [g.get("groupName") for g in (obj.get("spec") or {}).get("workerGroupSpecs") or []]
    for i, g in enumerate(groups):
        if g in groups[:i]:
            return (f"RayCluster.ray.io \"{obj['metadata']['name']}\" is invalid: spec.workerGroupSpecs[{i}]: Invalid "
                    "value: ...: worker group names must be unique")
    return None


def _isvc_denial(obj: Obj) -> str | None:
    low = ((obj.get("spec") or {}).get("predictor") or {}).get("minReplicas", 1)
    return "'MinReplicas' cannot be less than 0" if low < 0 else None


def _workspace_denial(obj: Obj) -> str | None:
    if "inference" not in obj and "tuning" not in obj:
        return "validation failed: Either Inference or Tuning must be specified, not neither: spec"
    return None


def _trainjob_denial(obj: Obj, cluster: FakeCluster) -> str | None:
    ref = (obj.get("spec") or {}).get("runtimeRef") or {}
    ns = obj["metadata"].get("namespace")
    if ref.get("kind") == "TrainingRuntime" and not cluster.get("trainer.kubeflow.org/v1alpha1", "trainingruntimes",
                                                                 ref.get("name", ""), ns):
        return (f"spec.runtimeRef: Invalid value: ...: trainingruntimes.trainer.kubeflow.org \"{ref.get('name')}\" not "
                "found: specified trainingRuntime must be created before the TrainJob is created")
    return None


# The operators' validating webhooks (name, the rule restated from the operator's Go code -> its message), as
# the API server reports a refusal: `admission webhook "NAME" denied the request: MESSAGE`.
WEBHOOKS: dict[str, tuple[str, Callable[[Obj, FakeCluster], str | None]]] = {
    "JobSet": ("vjobset.kb.io", lambda o, c: _jobset_denial(o)),
    "LeaderWorkerSet": ("vleaderworkerset.kb.io", lambda o, c: _lws_denial(o)),
    "RayCluster": ("vraycluster.kb.io", lambda o, c: _raycluster_denial(o)),
    "InferenceService": ("inferenceservice.kserve-webhook-server.validator", lambda o, c: _isvc_denial(o)),
    "Workspace": ("validation.workspace.kaito.sh", lambda o, c: _workspace_denial(o)),
    "TrainJob": ("validator.trainjob.trainer.kubeflow.org", _trainjob_denial),
}
# The condition each operator's controller sets once it has reconciled an object (its pods ran).
RECONCILED = {"JobSet": "Completed", "LeaderWorkerSet": "Available", "RayCluster": "RayClusterProvisioned",
              "InferenceService": "Ready", "Workspace": "WorkspaceSucceeded", "TrainJob": "Complete"}


def admit(obj: Obj, cluster: FakeCluster, webhooks: dict[str, tuple[str, Callable[[Obj, FakeCluster], str | None]]]
          = WEBHOOKS) -> None:
    """Raise the API server's 403 for a validating webhook's refusal of `obj`, if one refuses it."""
    hook = webhooks.get(str(obj.get("kind")))
    why = hook[1](obj, cluster) if hook else None
    if hook and why:
        raise ClusterError(f'admission webhook "{hook[0]}" denied the request: {why}', 403)


def reconcile(obj: Obj) -> Obj:
    """`obj` as its operator's controller leaves it once reconciled (its ready condition True)."""
    kind = str(obj.get("kind"))
    if kind in RECONCILED:
        obj["status"] = {"conditions": [{"type": RECONCILED[kind], "status": "True", "reason": "Reconciled"}]}
    return obj


class RunCluster(FakeCluster):
    def __init__(self, nodes: list[Obj], result_store: Any = None) -> None:
        gw_ns, gw_name = GATEWAY.split("/")
        gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                   "metadata": {"name": gw_name, "namespace": gw_ns},
                   "spec": {"gatewayClassName": "example", "listeners": [{"name": "http", "protocol": "HTTP",
                                                                          "port": 80}]},
                   "status": {"addresses": [{"type": "IPAddress", "value": "192.0.2.10"}],
                              "conditions": [{"type": "Programmed", "status": "True"}]}}
        super().__init__(nodes, objects=[gateway], start_after_reads=1)
        self.result_store = result_store
        self.result_keys: dict[str, str] = {}  # workload name -> result key its rank 0 writes
        for node, devices in self.devices.items():  # the GPU Operator's dcgm-exporter on each GPU node
            if not devices.get("nvidia.com/gpu"):
                continue
            name = f"nvidia-dcgm-exporter-{node}"
            self._store({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": name, "namespace": EXPORTER_NS, "labels": {"app": "nvidia-dcgm-exporter"}},
                "spec": {"nodeName": node, "containers": [{"name": "exporter", "image": "dcgm-exporter"}]},
                "status": {"phase": "Running"}})
            self.serve_http(EXPORTER_NS, name, self._dcgm_exporter(node))

    def _dcgm_exporter(self, node: str) -> Callable[[int, str], str]:
        return lambda port, path: self._dcgm_metrics(node)

    def _dcgm_metrics(self, node: str) -> str:
        """What dcgm-exporter shows of the node's devices: busy while a pod holding one runs."""
        busy = {d for p in self.pods.values() if p.node == node and p.obj["status"]["phase"] == "Running"
                for d in p.devices}
        lines = []
        for i, d in enumerate(self.devices[node]["nvidia.com/gpu"]):
            labels = f'gpu="{i}",UUID="{d}",device="nvidia{i}",Hostname="{node}"'
            lines += [f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {100 if d in busy else 0}",
                      f"DCGM_FI_DEV_FB_USED{{{labels}}} {1024 if d in busy else 0}"]
        return "\n".join(lines) + "\n"

    def api_resources(self) -> list[ApiResource]:
        return super().api_resources() + list(EXTRA_TYPES)

    def create(self, obj: Obj) -> Obj:
        admit(obj, self)
        return super().create(obj)

    def apply(self, obj: Obj) -> Obj:
        admit(obj, self)
        out = super().apply(obj)
        if obj.get("kind") == "Job":  # the Job controller: one pod per completion index
            spec = obj["spec"]
            for i in range(int(spec.get("parallelism", 1))):
                pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "name": f"{obj['metadata']['name']}-{i}-abcde", "namespace": obj["metadata"]["namespace"],
                    "labels": {**copy.deepcopy(spec["template"]["metadata"]["labels"]),
                               "batch.kubernetes.io/job-completion-index": str(i)}},
                    "spec": copy.deepcopy(spec["template"]["spec"]), "status": {"phase": "Running"}}
                self._store(pod)
        return out

    def list(self, group_version: str, plural: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[Obj]:
        if plural != "pods":
            return super().list(group_version, plural, namespace, label_selector)
        for pod in self.pods.values():  # a listed pod counts as read: the scheduler's turn comes
            pod.reads += 1
        out = super().list(group_version, plural, namespace, label_selector)
        for o in out:  # the kubelet: a Running pod's containers started, it is Ready
            if (o.get("status") or {}).get("phase") == "Running":
                o["status"]["conditions"] = [*o["status"].get("conditions", []), {"type": "Ready", "status": "True"}]
        return out

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        obj = super().get(group_version, plural, name, namespace)
        if obj is None:
            return None
        if plural in ("jobsets", "leaderworkersets", "rayclusters", "workspaces"):
            reconcile(obj)
        if plural in ("jobs", "trainjobs"):
            if self.result_store is not None and name in self.result_keys:
                self.result_store.put_bytes(self.result_keys[name], json.dumps({"param_sha256": "x"}).encode())
            obj["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
        if plural == "httproutes":
            obj["status"] = {"parents": [{"parentRef": obj["spec"]["parentRefs"][0], "conditions": [
                {"type": "Accepted", "status": "True"}, {"type": "ResolvedRefs", "status": "True"}]}]}
        return obj


def _clock() -> tuple[Callable[[], float], Callable[[float], None]]:
    t = [0.0]

    def sleep(s: float) -> None:
        t[0] += max(s, 0.01)

    return (lambda: t[0]), sleep


def _no_data_plane(url: str, headers: Any, timeout_s: float) -> str:
    raise ConnectionRefusedError(f"{url}: the simulated cluster has no Gateway data plane")


def provision(client: ScopedRecorder, gang_queue: str = "kaic") -> None:
    from steps.provision import fingerprint
    from steps.provision.active import ActiveProbes, PodSettings
    from steps.provision.active_exporter import ExporterScrape, ExporterSettings
    from steps.provision.active_gang import FLAVORS, PodGroupGang
    from steps.provision.active_gateway import GatewayRouting
    from steps.provision.active_hpa import HpaPlan, PodAutoscaling
    from steps.provision.active_operator import OPERATORS, OperatorWebhook
    from steps.provision.active_platform import Clock, KueueGang
    from steps.provision.read_probes import evaluate
    from steps.provision.view import gather

    view = gather(client)
    fingerprint.cluster(view, "sample")
    evaluate(view)
    available = sum(int(((n.get("status") or {}).get("allocatable") or {}).get("nvidia.com/gpu", 0))
                    for n in view.items("", "nodes"))
    clock, sleep = _clock()
    settings = PodSettings(NAMESPACE, "ghcr.io/kaic-dev/kaic:0.1.0", RUN_ID, "nvidia.com/gpu", timeout_s=30,
                           gang_observe_s=3, gang_queue=gang_queue)
    probes = ActiveProbes(client, settings, poll_s=0.5, clock=clock, sleep=sleep)
    gangs = [KueueGang(client, settings, Clock(0.5, clock, sleep)),
             *[PodGroupGang(client, settings, flavor, Clock(0.5, clock, sleep)) for flavor in FLAVORS.values()]]
    exporter = ExporterSettings(("app=nvidia-dcgm-exporter",), None, load_s=10, timeout_s=30)
    routing = GatewayRouting(client, settings, GATEWAY, clock=Clock(0.5, clock, sleep), fetch=_no_data_plane)
    # No HPA controller here: the pod_autoscaling probe creates, polls and deletes its Deployment and HPA, and
    # fails (its pod never Ready), which is its whole cluster path.
    hpa = PodAutoscaling(client, settings, HpaPlan(), Clock(0.5, clock, sleep))
    runs: list[Callable[[], Outcome]] = [probes.accelerator_pod, probes.no_request_no_device,
                                         lambda: probes.device_isolation(available),
                                         *[functools.partial(g.run, available) for g in gangs],
                                         ExporterScrape(client, settings, exporter, Clock(0.5, clock, sleep)).run,
                                         routing.run, hpa.run]
    # each namespaced operator on its own (the probe stops at the first that passes; here every one would)
    runs += [OperatorWebhook(client, settings, (c.name,), Clock(0.5, clock, sleep)).run for c in OPERATORS
             if c.namespaced]
    for probe in runs:
        outcome = probe()
        if outcome.status.value not in ("passed", "failed"):
            raise RuntimeError(f"{outcome.check_id} did not run its cluster path: {outcome.message}")


def train(client: ScopedRecorder, cluster: RunCluster, work: Path) -> None:
    from kaic import checkpoint
    from kaic.profiles import load_profile
    from kaic.stores.objects import open_store
    from steps.train.cluster import ClusterLauncher, names
    from steps.train.spec import WorkerSpec

    store = open_store(f"file://{work / 'objects'}", source="drive")
    ck_uri = f"file://{work / 'checkpoints'}"
    checkpoint.write(open_store(ck_uri, source="drive"), 1, {"model.pt": b"x"}, world_size=2, framework="torch")
    cluster.result_store = store
    profile = load_profile("eks")
    for kind in ("job", "trainjob"):
        launcher = ClusterLauncher(client, RUN_ID, profile, store, deadline_s=30, kind=kind, poll_s=0.01)
        for launch, kill in (("torch", None), ("killed", 1)):
            if kind == "trainjob" and kill:
                continue
            spec = WorkerSpec(store.base_uri, "d", f"runs/{RUN_ID}/train/{kind}-{launch}.json",
                              checkpoint_uri=ck_uri)
            cluster.result_keys[names(RUN_ID, launch)] = spec.result_key
            result = launcher.launch(spec, 2, launch, kill_after_checkpoint=kill)
            if not result.ok or (kill and not result.killed):
                raise RuntimeError(f"train {kind} {launch} did not complete its cluster path: {result.message}")


def serve(client: ScopedRecorder) -> None:
    from kaic.profiles import load_profile
    from steps.serve import isvc
    from steps.serve.cluster import ClusterServing, gateway_route, serve_on_cluster
    from steps.serve.exercise import LoadPlan
    from steps.serve.export import ExportedModel

    profile = load_profile("eks")
    profile = profile.model_copy(update={"serving": profile.serving.model_copy(update={"gateway": GATEWAY})})
    cfg = ClusterServing(NAMESPACE, RUN_ID, f"s3://kaic/objects/runs/{RUN_ID}/model", ready_timeout_s=1,
                         deployment_mode="RawDeployment", workers=1, threads=1, poll_s=0.5)
    model = ExportedModel(Path("/nonexistent"), "digits", 64, None)
    plan = LoadPlan((1,), 0.0, 0.1, 1.0, 1, 1, 1, 1e-3, 1e-3)
    clock, sleep = _clock()
    # The predictor never gets Ready here (no KServe controller), which covers apply + the Ready poll;
    # the Gateway part then runs on its own, as serve_on_cluster runs it once the predictor is Ready.
    rows = serve_on_cluster(client, model, plan, cfg, profile, lambda _: None, clock, sleep)
    if rows[0].check_id != "serve.ready":
        raise RuntimeError("serve_on_cluster did not report readiness first")
    outcome, via = gateway_route(client, isvc.isvc_name(RUN_ID), "digits", cfg, profile, lambda _: None, clock,
                                 sleep)
    if via is None:
        raise RuntimeError(f"gateway_route did not complete its cluster path: {outcome.message}")


def seed_leftovers(cluster: RunCluster) -> int:
    """What an interrupted run leaves behind: every namespaced object kaic generates (sample run id = RUN_ID),
    stored as the API server would hold it. Teardown must find and delete all of it."""
    from kaic.deploy_check.generated import SAMPLE_RUN_ID, probe_manifests, serve_manifests, train_manifests

    assert SAMPLE_RUN_ID == RUN_ID
    objs = probe_manifests("eks") + train_manifests("eks") + serve_manifests("eks")
    for _, obj in objs:
        cluster._store(copy.deepcopy(obj))
    return len(objs)


def teardown(client: ScopedRecorder) -> None:
    from steps.teardown import capacity, cluster

    clock, sleep = _clock()
    swept = cluster.sweep(client, RUN_ID, deadline_s=5, poll_s=0.5, clock=clock, sleep=sleep)
    if swept.failures or swept.left or not swept.deleted:
        raise RuntimeError(f"teardown sweep: deleted {swept.deleted}, failures {swept.failures}, left {swept.left}")
    kwargs: dict[str, Any] = {"want": {"nvidia.com/gpu": 1.0}, "deadline_s": 5, "poll_s": 0.5, "clock": clock,
                              "sleep": sleep}
    if "run_id" in inspect.signature(capacity.wait_cluster).parameters:  # newer: ignores the run's own pods
        kwargs["run_id"] = RUN_ID
    capacity.wait_cluster(client, **kwargs)


def record_run(nodes: list[Obj]) -> dict[str, set[ScopedCall]]:
    """{step: calls} for provision, train, serve and teardown, run in that order on one cluster."""
    cluster = RunCluster(nodes)
    calls: dict[str, set[ScopedCall]] = {}
    with tempfile.TemporaryDirectory(prefix="kaic-rbac-") as tmp:
        steps: list[tuple[str, Callable[[ScopedRecorder], None]]] = [
            ("provision", provision),
            ("train", lambda c: train(c, cluster, Path(tmp))),
            ("serve", serve),
            ("teardown", teardown),
        ]
        for name, fn in steps:
            if name == "teardown":
                seed_leftovers(cluster)
            rec = ScopedRecorder(cluster)
            fn(rec)
            calls[name] = rec.scoped
    return calls


def gpu_nodes(node: Obj, count: int = 2) -> list[Obj]:
    """`count` copies of a real Node object, renamed."""
    out = []
    for i in range(count):
        n = copy.deepcopy(node)
        n["metadata"]["name"] = f"gpu-{i}"
        n["metadata"].setdefault("labels", {})["kubernetes.io/hostname"] = f"gpu-{i}"
        out.append(n)
    return out


def fixture_nodes(shared: Path) -> list[Obj] | None:
    """Two GPU nodes from a real captured Node list under ../shared, or None when it is absent."""
    path = shared / "fixtures" / "k8s" / "nodes" / "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json"
    if not path.is_file():
        return None
    return gpu_nodes(json.loads(path.read_text())["items"][0])
