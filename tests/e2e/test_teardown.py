"""Teardown on the real API: a run's objects (everything kaic's builders make, plus the pods the Job
controller makes from the training Job), then kaic's teardown sweep (`steps.teardown.cluster.sweep`, what
`kaic step teardown` runs on a cluster), then the namespace deleted: once the namespace controller and the
garbage collector are done, no object in any served type, in any namespace, carries the run's label. On the
way, teardown's capacity check (`capacity.wait_cluster`) sees the GPUs the run's scheduler-bound pods hold,
and sees them all free again after the sweep."""

from __future__ import annotations

import pytest

from kaic.cluster import run_selector, wait_until
from steps.teardown import capacity
from steps.teardown import cluster as teardown
from steps.teardown.kinds import CREATED_KINDS
from tests.e2e import live

pytestmark = pytest.mark.e2e

GPU = "nvidia.com/gpu"


def test_teardown_then_namespace_deletion_leave_nothing_of_the_run(kubeconfig: str) -> None:
    admin = live.connect(kubeconfig)
    run_id = live.unique("kaic-e2e-teardown")
    selector = run_selector(run_id)
    every_kind = live.listable(admin)
    with live.namespace(admin, "kaic-teardown") as ns:
        live.service_account(admin, ns, live.profile(ns).kubernetes.service_account)
        objs = live.kaic_objects(ns, run_id)
        for obj in objs.values():
            admin.create(obj)
        job = objs["training Indexed Job"]
        wait_until(lambda: len(admin.list("v1", "pods", ns, f"job-name={job['metadata']['name']}"))
                   == job["spec"]["completions"], live.DEADLINE_S, "the Job controller's pods", 0.5)
        before = live.labelled_objects(admin, selector, every_kind)
        assert len(before) >= len(objs) + job["spec"]["completions"], before
        probe = objs["probe Pod"]["metadata"]["name"]
        wait_until(lambda: (admin.get("v1", "pods", probe, ns) or {}).get("spec", {}).get("nodeName"),
                   live.DEADLINE_S, f"the scheduler to bind pod {ns}/{probe} (1 nvidia.com/gpu)", 0.5)
        gpus = float(sum(int(n["status"]["allocatable"].get(GPU, 0)) for n in admin.list("v1", "nodes")))
        held, _ = capacity.wait_cluster(admin, run_id, {GPU: gpus}, deadline_s=0)
        assert held[GPU][1] <= gpus - 1  # the run's bound pods hold GPUs: teardown's capacity check sees it

        swept = teardown.sweep(admin, run_id, deadline_s=live.DEADLINE_S, poll_s=0.5)
        assert swept.failures == []
        assert swept.left == []
        missing, _ = capacity.wait_cluster(admin, run_id, {GPU: gpus}, deadline_s=live.DEADLINE_S, poll_s=0.5)
        assert missing == {}  # every GPU free again, as teardown.capacity_reclaimed judges it
        assert swept.deleted >= len(objs)
        assert set(swept.kinds) >= {("batch/v1", "jobs"), ("v1", "pods"), ("v1", "services"),
                                    ("serving.kserve.io/v1beta1", "inferenceservices"),
                                    ("gateway.networking.k8s.io/v1", "httproutes")}
        assert set(swept.kinds) <= set(CREATED_KINDS)
    # the namespace is deleted on the way out of the block: its controller and the GC finish the rest
    wait_until(lambda: admin.get("v1", "namespaces", ns) is None, 120, f"namespace {ns} to be deleted", 1)
    assert live.labelled_objects(admin, selector, every_kind) == []
