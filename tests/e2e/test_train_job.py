"""The training launcher's Indexed Job under the real Job controller: applied exactly as
`steps.train.cluster.ClusterLauncher` applies it (server-side apply through kaic's client), the controller
creates one worker pod per completion index, with the index in a label, an annotation and the
JOB_COMPLETION_INDEX variable (resolved by the downward API from that metadata), a hostname `<job>-<index>`
under the headless Service's subdomain (so the rendezvous address kaic passes to torchrun,
`<job>-0.<job>:29400`, names worker 0), kaic's environment (the object-store Secret's keys, optional), its
ServiceAccount and the run-id label teardown selects by. The resume check's kill (`_kill_worker`) finds
exactly worker 1 by its real labels."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaic.cluster import RUN_ID_LABEL, Obj, run_selector, wait_until
from kaic.cluster.kube import KubeCluster
from kaic.stores.objects import open_store
from steps.train import cluster as train
from steps.train.spec import WorkerSpec
from tests.e2e import live

pytestmark = pytest.mark.e2e

INDEX = "batch.kubernetes.io/job-completion-index"
LAUNCH = "torch"
Launched = tuple[KubeCluster, str, train.ClusterLauncher, list[Obj]]


@pytest.fixture(scope="module")
def launched(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launched]:
    admin = live.connect(kubeconfig)
    with live.namespace(admin, "kaic-train") as ns:
        profile = live.profile(ns)
        live.service_account(admin, ns, profile.kubernetes.service_account)
        store = open_store(f"file://{tmp_path_factory.mktemp('objects')}", source="e2e")
        run_id = live.unique("kaic-e2e-train")
        launcher = train.ClusterLauncher(admin, run_id, profile, store, deadline_s=600)
        spec = WorkerSpec(store.base_uri, f"runs/{run_id}/data/digits.parquet", f"runs/{run_id}/train/torch.json",
                          accelerators_per_worker=profile.accelerator.per_worker)
        manifests = launcher.manifests(spec, profile.training.world_size, LAUNCH)
        for obj in manifests:
            launcher.client.apply(obj)
        yield admin, ns, launcher, manifests


def field(pod: Obj, path: str) -> str:
    """A downward-API fieldPath of the form metadata.labels['k'] / metadata.annotations['k'] on `pod`."""
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    assert m, f"unexpected fieldPath {path}"
    return str(pod["metadata"][m.group(1)][m.group(2)])


def _workers(admin: KubeCluster, ns: str, job: Obj) -> list[Obj]:
    want = job["spec"]["completions"]

    def created() -> list[Obj] | None:
        pods = admin.list("v1", "pods", ns, f"job-name={job['metadata']['name']}")
        return pods if len(pods) == want else None

    pods = wait_until(created, live.DEADLINE_S, f"{want} worker pods of Job {ns}/{job['metadata']['name']}", 0.5)
    return sorted(pods, key=lambda p: int(p["metadata"]["labels"][INDEX]))


def test_the_job_controller_creates_one_worker_per_index_with_kaics_environment(launched: Launched) -> None:
    admin, ns, launcher, (service, job) = launched
    name, world = job["metadata"]["name"], launcher.profile.training.world_size
    pods = _workers(admin, ns, job)
    assert [p["metadata"]["labels"][INDEX] for p in pods] == [str(i) for i in range(world)]
    assert [p["metadata"]["annotations"][INDEX] for p in pods] == [str(i) for i in range(world)]
    assert [p["spec"]["hostname"] for p in pods] == [f"{name}-{i}" for i in range(world)]
    for index, pod in enumerate(pods):
        spec, labels = pod["spec"], pod["metadata"]["labels"]
        assert spec["subdomain"] == service["metadata"]["name"] == name
        assert spec["serviceAccountName"] == launcher.profile.kubernetes.service_account
        assert labels[RUN_ID_LABEL] == launcher.run_id
        assert labels[train.LAUNCH_LABEL] == LAUNCH
        (worker,) = spec["containers"]
        env = {e["name"]: e for e in worker["env"]}
        # the downward API resolves it from the pod's own metadata (1.36: the label)
        assert field(pod, env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]) == str(index)
        assert {k: env[k].get("value") for k in ("OMP_NUM_THREADS", "PYTHONUNBUFFERED")} == \
            {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        for var, key in train.S3_SECRET_KEYS:
            assert env[var]["valueFrom"]["secretKeyRef"] == {"name": train.S3_SECRET, "key": key, "optional": True}
        argv = worker["command"]
        assert argv[argv.index("--nnodes") + 1] == str(world)
        assert argv[argv.index("--rdzv-endpoint") + 1] == f"{pods[0]['spec']['hostname']}.{spec['subdomain']}:" \
                                                           f"{train.RDZV_PORT}"
        assert worker["resources"]["limits"][launcher.profile.accelerator.resource_name] == \
            str(launcher.profile.accelerator.per_worker)


def test_the_scheduler_places_each_worker_on_a_node_with_its_accelerator(launched: Launched) -> None:
    admin, ns, launcher, (_service, job) = launched
    resource = launcher.profile.accelerator.resource_name
    gpu_nodes = {n["metadata"]["name"] for n in admin.list("v1", "nodes")
                 if int(n["status"]["allocatable"].get(resource, "0")) > 0}
    assert gpu_nodes

    def bound() -> list[str] | None:
        where = [p["spec"].get("nodeName") for p in admin.list("v1", "pods", ns, f"job-name={job['metadata']['name']}")]
        return where if len(where) == job["spec"]["completions"] and all(where) else None

    placed = wait_until(bound, live.DEADLINE_S, f"the scheduler to bind the workers of Job {ns}", 0.5)
    assert set(placed) <= gpu_nodes


def test_the_headless_service_selects_exactly_the_workers(launched: Launched) -> None:
    admin, ns, _launcher, (service, job) = launched
    pods = _workers(admin, ns, job)
    selector = ",".join(f"{k}={v}" for k, v in service["spec"]["selector"].items())
    assert sorted(p["metadata"]["name"] for p in admin.list("v1", "pods", ns, selector)) == \
        sorted(p["metadata"]["name"] for p in pods)
    stored = admin.get("v1", "services", service["metadata"]["name"], ns)
    assert stored is not None
    assert stored["spec"]["clusterIP"] == "None"


def test_the_resume_check_kills_worker_one_and_the_launcher_cleans_up(launched: Launched) -> None:
    admin, ns, launcher, (_service, job) = launched
    pods = _workers(admin, ns, job)
    killed = launcher._kill_worker(ns, LAUNCH)
    assert killed.startswith(f"deleted pod {ns}/{pods[1]['metadata']['name']} (worker index 1)"), killed
    launcher._delete(LAUNCH)  # what launch() runs in `finally`

    def gone() -> bool:
        return not live.labelled_objects(admin, run_selector(launcher.run_id),
                                         [("batch/v1", "jobs"), ("v1", "services"), ("v1", "pods")])

    assert wait_until(gone, live.DEADLINE_S, f"run {launcher.run_id}'s Job, Service and pods to be deleted", 0.5)


def test_the_launcher_follows_the_real_job_to_complete_and_cleans_up(kubeconfig: str, tmp_path: Path) -> None:
    """`ClusterLauncher.launch` end to end: the real Job controller marks the Job Complete once kwok has run
    its pods to Succeeded, the launcher's poll reads that condition, and its cleanup deletes what it made.
    No worker process runs on kwok, so rank 0's result JSON is absent, and the launcher says so (not ok)."""
    admin = live.connect(kubeconfig)
    with live.namespace(admin, "kaic-launch") as ns:
        profile = live.profile(ns)
        live.service_account(admin, ns, profile.kubernetes.service_account)
        store = open_store(f"file://{tmp_path / 'objects'}", source="e2e")
        run_id = live.unique("kaic-e2e-launch")
        launcher = train.ClusterLauncher(admin, run_id, profile, store, deadline_s=live.DEADLINE_S, poll_s=0.5)
        spec = WorkerSpec(store.base_uri, f"runs/{run_id}/data/digits.parquet", f"runs/{run_id}/train/torch.json")
        result = launcher.launch(spec, 2, LAUNCH)
        name = train.names(run_id, LAUNCH)
        assert result.message == f"Job {ns}/{name} ended Complete; no result JSON"
        assert not result.ok

        def gone() -> bool:
            return not live.labelled_objects(admin, run_selector(run_id),
                                             [("batch/v1", "jobs"), ("v1", "services"), ("v1", "pods")])

        assert wait_until(gone, live.DEADLINE_S, f"run {run_id}'s Job, Service and pods to be deleted", 0.5)
