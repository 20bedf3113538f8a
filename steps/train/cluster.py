"""Cluster launchers: pure manifest builders, and a launcher that applies them through the ClusterClient seam.

- `job`: an Indexed Job (completions = parallelism = world size, one pod per worker) plus a headless
  Service giving pod 0 a stable DNS name (`<job>-0.<service>`) for torchrun's c10d rendezvous.
- `trainjob`: a Kubeflow Trainer v2 `TrainJob` (trainer.kubeflow.org/v1alpha1) on the
  `torch-distributed` ClusterTrainingRuntime, which sets torchrun's PET_* variables itself.

Every object carries `kaic.dev/run-id=<run-id>` and `kaic.dev/launch=<name>`; with a Kueue queue in the
profile the workload also carries `kueue.x-k8s.io/queue-name` (and the Job starts suspended, for Kueue
to admit it as a gang). The per-worker command is the same `steps.train.worker` that runs locally.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kaic import checkpoint
from kaic.cluster import ClusterClient, ClusterError, DeadlineExceededError, Obj, labelled, wait_until
from kaic.podsecurity import container_security, pod_security
from kaic.profiles import Profile
from kaic.stores import ObjectStore
from kaic.stores.objects import open_store
from steps.train.launch import LaunchResult, read_result
from steps.train.spec import WorkerSpec

LAUNCH_LABEL = "kaic.dev/launch"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
RDZV_PORT = 29400
TRAINJOB_RUNTIME = "torch-distributed"
# The Secret the Helm chart documents (objectStore.credentialsSecret; keys endpoint, accessKey, secretKey),
# read exactly as the workflow's step pods read it (pipelines/conformance.py ENV); optional, like there.
S3_SECRET = "kaic-object-store"
S3_SECRET_KEYS = (("KAIC_S3_ENDPOINT", "endpoint"), ("KAIC_S3_ACCESS_KEY", "accessKey"),
                  ("KAIC_S3_SECRET_KEY", "secretKey"))


def names(run_id: str, launch: str) -> str:
    """A DNS-1035 label for the Job/Service: kaic-<launch>-<short run id> (<= 52 chars, Job name limit)."""
    short = "".join(c for c in run_id.lower() if c.isalnum())[-12:]
    base = f"kaic-{launch}-{short}".lower().replace("_", "-")
    return base[:52].rstrip("-")


def _labels(run_id: str, launch: str, profile: Profile) -> dict[str, str]:
    out = {LAUNCH_LABEL: launch, "app.kubernetes.io/part-of": "kaic", "app.kubernetes.io/component": "train"}
    if profile.training.kueue_queue:
        out[KUEUE_QUEUE_LABEL] = profile.training.kueue_queue
    return out


def _env() -> list[dict[str, Any]]:
    return [{"name": "OMP_NUM_THREADS", "value": "1"}, {"name": "CUBLAS_WORKSPACE_CONFIG", "value": ":4096:8"},
            {"name": "PYTHONUNBUFFERED", "value": "1"}] + [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": S3_SECRET, "key": key, "optional": True}}}
        for var, key in S3_SECRET_KEYS]


def _resources(profile: Profile, per_worker: int) -> dict[str, Any]:
    if per_worker <= 0:
        return {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    return {"requests": {"cpu": "2", "memory": "8Gi"},
            "limits": {profile.accelerator.resource_name: str(per_worker), "memory": "16Gi"}}


def headless_service(run_id: str, launch: str, profile: Profile) -> Obj:
    name = names(run_id, launch)
    return labelled({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": profile.kubernetes.namespace,
                     "labels": _labels(run_id, launch, profile)},
        "spec": {"clusterIP": "None", "selector": {LAUNCH_LABEL: launch, "kaic.dev/job": name},
                 "ports": [{"name": "rendezvous", "port": RDZV_PORT, "targetPort": RDZV_PORT}],
                 "publishNotReadyAddresses": True},
    }, run_id)


def indexed_job(run_id: str, launch: str, profile: Profile, spec: WorkerSpec, world_size: int,
                deadline_s: float) -> Obj:
    """One pod per worker; torchrun in each pod (nproc = accelerators per worker, at least 1)."""
    name = names(run_id, launch)
    nproc = max(spec.accelerators_per_worker, 1)
    command = ["python", "-m", "torch.distributed.run", "--nnodes", str(world_size), "--nproc-per-node", str(nproc),
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{name}-0.{name}:{RDZV_PORT}", "--rdzv-id", name,
               "--max-restarts", "0", "-m", "steps.train.worker", *spec.to_argv()]
    labels = _labels(run_id, launch, profile)
    pod_labels = {LAUNCH_LABEL: launch, "kaic.dev/job": name}
    container = {
        "name": "worker", "image": profile.image, "imagePullPolicy": "IfNotPresent", "command": command,
        "env": _env(),
        "ports": [{"containerPort": RDZV_PORT, "name": "rendezvous"}],
        "resources": _resources(profile, spec.accelerators_per_worker),
        "securityContext": container_security(),
    }
    pod_spec: dict[str, Any] = {
        "subdomain": name, "restartPolicy": "Never", "serviceAccountName": profile.kubernetes.service_account,
        "securityContext": pod_security(), "containers": [container],
    }
    if profile.accelerator.node_selector:
        pod_spec["nodeSelector"] = dict(profile.accelerator.node_selector)
    if profile.accelerator.tolerations:
        pod_spec["tolerations"] = [t.model_dump(exclude_none=True) for t in profile.accelerator.tolerations]
    job: dict[str, Any] = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": profile.kubernetes.namespace, "labels": labels},
        "spec": {"completionMode": "Indexed", "completions": world_size, "parallelism": world_size,
                 "backoffLimit": 0, "activeDeadlineSeconds": int(deadline_s), "ttlSecondsAfterFinished": 3600,
                 "suspend": bool(profile.training.kueue_queue),  # Kueue admits (unsuspends) the whole gang
                 "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec}},
    }
    return labelled(job, run_id)


def trainjob(run_id: str, launch: str, profile: Profile, spec: WorkerSpec, world_size: int,
             deadline_s: float) -> Obj:
    """A Kubeflow Trainer v2 TrainJob; the torch runtime provides torchrun's PET_* rendezvous settings."""
    trainer: dict[str, Any] = {
        "image": profile.image,
        "command": ["python", "-m", "torch.distributed.run", "-m", "steps.train.worker"],
        "args": spec.to_argv(), "numNodes": world_size, "env": _env(),
        "resourcesPerNode": _resources(profile, spec.accelerators_per_worker),
    }
    if spec.accelerators_per_worker > 0:
        trainer["numProcPerNode"] = spec.accelerators_per_worker
    return labelled({
        "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
        "metadata": {"name": names(run_id, launch), "namespace": profile.kubernetes.namespace,
                     "labels": _labels(run_id, launch, profile)},
        "spec": {"runtimeRef": {"name": TRAINJOB_RUNTIME, "apiGroup": "trainer.kubeflow.org",
                                "kind": "ClusterTrainingRuntime"},
                 "activeDeadlineSeconds": int(deadline_s), "trainer": trainer},
    }, run_id)


def finished(obj: Obj | None) -> str | None:
    """'Complete' / 'Failed' once a Job or TrainJob has that condition True, else None."""
    for c in (obj or {}).get("status", {}).get("conditions", []) or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed"):
            return str(c["type"])
    return None


@dataclass
class ClusterLauncher:
    """Applies the manifests, waits with a deadline, reads rank 0's result from the object store, and
    deletes what it created (by its launch label) in `finally`."""

    client: ClusterClient
    run_id: str
    profile: Profile
    store: ObjectStore
    deadline_s: float
    kind: str = "job"  # or "trainjob"
    poll_s: float = 5.0

    def manifests(self, spec: WorkerSpec, world_size: int, name: str) -> list[Obj]:
        if self.kind == "trainjob":
            return [trainjob(self.run_id, name, self.profile, spec, world_size, self.deadline_s)]
        return [headless_service(self.run_id, name, self.profile),
                indexed_job(self.run_id, name, self.profile, spec, world_size, self.deadline_s)]

    def launch(self, spec: WorkerSpec, world_size: int, name: str,
               kill_after_checkpoint: int | None = None) -> LaunchResult:
        objs = self.manifests(spec, world_size, name)
        workload = objs[-1]
        gv, plural = workload["apiVersion"], "trainjobs" if self.kind == "trainjob" else "jobs"
        ns, wname = self.profile.kubernetes.namespace, workload["metadata"]["name"]
        started = time.monotonic()
        killed = ""
        ck_store = open_store(spec.checkpoint_uri, source="--checkpoint-uri") if kill_after_checkpoint else None
        try:
            for obj in objs:
                self.client.apply(obj)

            def poll() -> str | None:
                nonlocal killed
                if ck_store is not None and not killed and kill_after_checkpoint in checkpoint.list_steps(ck_store):
                    killed = self._kill_worker(ns, name)
                return finished(self.client.get(gv, plural, wname, ns))

            phase = wait_until(poll, self.deadline_s, f"{workload['kind']} {ns}/{wname} to finish", self.poll_s)
        except DeadlineExceededError as exc:
            return LaunchResult(name, False, time.monotonic() - started, str(exc), killed=killed)
        except ClusterError as exc:
            return LaunchResult(name, False, time.monotonic() - started, f"cluster error: {exc}", killed=killed)
        finally:
            self._delete(name)
        result = read_result(self.store, spec.result_key) if phase == "Complete" else None
        ok = phase == "Complete" and result is not None
        msg = "" if ok else f"{workload['kind']} {ns}/{wname} ended {phase}" + ("" if result else "; no result JSON")
        return LaunchResult(name, ok, time.monotonic() - started, msg, result, killed)

    def _kill_worker(self, ns: str, launch: str) -> str:
        sel = f"{LAUNCH_LABEL}={launch},batch.kubernetes.io/job-completion-index=1"
        pods = self.client.list("v1", "pods", ns, sel)
        for pod in pods:
            self.client.delete("v1", "pods", pod["metadata"]["name"], ns)
            return f"deleted pod {ns}/{pod['metadata']['name']} (worker index 1) after the checkpoint appeared"
        return ""

    def _delete(self, launch: str) -> None:
        ns = self.profile.kubernetes.namespace
        sel = f"kaic.dev/run-id={self.run_id},{LAUNCH_LABEL}={launch}"
        kinds = [("trainer.kubeflow.org/v1alpha1", "trainjobs")] if self.kind == "trainjob" else \
            [("batch/v1", "jobs"), ("v1", "services"), ("v1", "pods")]
        for gv, plural in kinds:
            try:
                self.client.delete_collection(gv, plural, ns, sel)
            except ClusterError:
                continue  # teardown deletes by run id again and reports what is left
