"""Argo on the dev cluster: the real workflow-controller (v4, Go-built) drives workflows whose pods kaic's pod
runner executes as local processes (kaic.devcluster.pod_runner), through the real API server and scheduler.

- a small workflow (DAG, output parameter from a file, script `result`, Secret/fieldRef environment, onExit)
  ends Succeeded with the outputs the controller read from the WorkflowTaskResults; a failing one ends Failed
  with the exit code and the "not emulated" message in its nodes, and its exit handler still runs;
- a Workflow the controller errored because its cache had not yet seen the template is submitted again;
- kaic's compiled WorkflowTemplate and CronWorkflow are accepted by the real API (a broken one is refused);
- kaic's conformance workflow, submitted with `kaic submit --kubeconfig`, ends Succeeded with every step run
  by the pod runner and the onExit teardown run; a run whose train step fails ends Failed, teardown still run;
- the compiled CronWorkflow, scheduled every minute, makes the controller start a Workflow.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaic.argo import kube as argo_kube
from kaic.cluster import ClusterError
from kaic.cluster.kube import KubeCluster, resource_path
from kaic.devcluster.pod_runner import NODE
from tests.e2e import live
from tests.integration.conftest import S3Server, mlflow_server, s3_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e

GV = "argoproj.io/v1alpha1"
SMALL_DEADLINE_S = 300.0  # bounds on waiting, not timed assertions
KAIC_DEADLINE_S = 2400.0
CRON_DEADLINE_S = 90.0


@pytest.fixture(scope="module")
def kc(kubeconfig: str) -> KubeCluster:
    """An admin client, once the cluster runs Argo: the pod runner's Node is Ready and Workflows are served."""
    client = live.connect(kubeconfig)
    node = client.get("v1", "nodes", NODE)
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in ((node or {}).get("status") or {}).get("conditions") or [])
    if not ready or client.get("apiextensions.k8s.io/v1", "customresourcedefinitions", "workflows.argoproj.io") is None:
        pytest.skip(f"the cluster has no Ready node {NODE} or no Argo CRDs: start it with `make cluster` "
                    "(its argo addon runs the workflow-controller and the pod runner)")
    return client


def run_to_end(kc: KubeCluster, ns: str, body: dict[str, Any], deadline_s: float) -> dict[str, Any]:
    """Create the Workflow, wait (kaic's own waiter) for a final phase, return the stored Workflow."""
    created = kc.create({**body, "metadata": {**body["metadata"], "namespace": ns}})
    name = created["metadata"]["name"]
    out = io.StringIO()
    waited = argo_kube.wait_for_workflow(kc, name, ns, timeout_s=deadline_s, poll_s=1.0, out=out)
    wf = kc.get(GV, "workflows", name, ns) or {}
    assert not waited.timed_out, f"{name} still {waited.phase} after {deadline_s:.0f} s:\n{out.getvalue()}\n" \
                                 f"{json.dumps(wf.get('status'), indent=1)[:4000]}"
    return wf


def nodes(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """displayName -> node status (the DAG's tasks, the exit handler `<workflow>.onExit`)."""
    return {n["displayName"]: n for n in ((wf.get("status") or {}).get("nodes") or {}).values()}


def pod_nodes(wf: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in nodes(wf).values() if n.get("type") == "Pod"]


def last_pod(wf: dict[str, Any], name: str) -> dict[str, Any]:
    """The pod that ran task `name`: the node itself, or, for a template with a retryStrategy (a Retry node),
    its last attempt `name(N)`."""
    pods = [n for n in pod_nodes(wf) if n["displayName"] == name or n["displayName"].startswith(f"{name}(")]
    assert pods, f"no pod ran {name}: {sorted(nodes(wf))}"
    return max(pods, key=lambda n: n.get("startedAt") or "")


SMALL: dict[str, Any] = {
    "apiVersion": GV, "kind": "Workflow", "metadata": {"generateName": "small-"},
    "spec": {
        "entrypoint": "main", "onExit": "goodbye",
        "templates": [
            {"name": "main", "dag": {"tasks": [
                {"name": "write", "template": "write"},
                {"name": "compute", "template": "compute"},
                {"name": "read", "template": "echo", "depends": "write && compute",
                 "arguments": {"parameters": [{"name": "msg", "value":
                     "{{tasks.write.outputs.parameters.greeting}}/{{tasks.compute.outputs.result}}"}]}},
            ]}},
            {"name": "write", "container": {
                "image": "busybox", "command": ["sh", "-c"],
                "args": ['mkdir -p "$OUT" && printf "%s-%s\\n" "$GREETING" "$NS" > "$OUT/greeting"'],
                "env": [{"name": "GREETING", "valueFrom": {"secretKeyRef": {"name": "small", "key": "greeting"}}},
                        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "OUT", "value": "/tmp/kaic-e2e-argo/$(NS)"}]},
             "outputs": {"parameters": [{"name": "greeting", "valueFrom": {
                 "path": "/tmp/kaic-e2e-argo/{{workflow.namespace}}/greeting"}}]}},
            {"name": "compute", "script": {"image": "python:3.13", "command": ["python3"],
                                           "source": "print(6 * 7)"}},
            {"name": "echo", "inputs": {"parameters": [{"name": "msg"}]},
             "container": {"image": "busybox", "command": ["echo"], "args": ["{{inputs.parameters.msg}}"]}},
            {"name": "goodbye", "container": {"image": "busybox", "command": ["echo"], "args": ["bye"]}},
        ],
    },
}


def test_a_small_workflow_succeeds_with_its_outputs_under_the_real_controller(kc: KubeCluster) -> None:
    with live.namespace(kc, "argo-small", restricted=False) as ns:
        kc.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "small", "namespace": ns},
                   "data": {"greeting": base64.b64encode(b"hello").decode()}})
        wf = run_to_end(kc, ns, SMALL, SMALL_DEADLINE_S)
        status, by_name = wf["status"], nodes(wf)
        assert status["phase"] == "Succeeded", status.get("message")
        assert by_name["write"]["outputs"]["parameters"][0]["value"] == f"hello-{ns}"
        assert by_name["compute"]["outputs"]["result"] == "42"
        assert by_name["read"]["inputs"]["parameters"][0]["value"] == f"hello-{ns}/42"
        assert by_name[f"{wf['metadata']['name']}.onExit"]["phase"] == "Succeeded"
        ran = pod_nodes(wf)
        assert len(ran) == 4
        assert {n["hostNodeName"] for n in ran} == {NODE}
        assert {n["outputs"]["exitCode"] for n in ran} == {"0"}


FAILING: dict[str, Any] = {
    "apiVersion": GV, "kind": "Workflow", "metadata": {"generateName": "failing-"},
    "spec": {
        "entrypoint": "main", "onExit": "cleanup",
        "templates": [
            {"name": "main", "dag": {"failFast": False, "tasks": [
                {"name": "exits-3", "template": "exits-3"},
                {"name": "image-only", "template": "image-only"},
            ]}},
            {"name": "exits-3", "container": {"image": "busybox", "command": ["sh", "-c"],
                                              "args": ["echo about to fail >&2; exit 3"]}},
            {"name": "image-only", "container": {"image": "example.com/tool:1", "command": ["kaic-no-such-tool"]}},
            {"name": "cleanup", "container": {"image": "busybox", "command": ["echo"],
                                              "args": ["{{workflow.status}}"]}},
        ],
    },
}


def test_a_failing_workflow_ends_failed_and_its_exit_handler_still_runs(kc: KubeCluster) -> None:
    with live.namespace(kc, "argo-fail", restricted=False) as ns:
        wf = run_to_end(kc, ns, FAILING, SMALL_DEADLINE_S)
        by_name = nodes(wf)
        assert wf["status"]["phase"] == "Failed"
        assert by_name["exits-3"]["phase"] == "Failed"
        assert by_name["exits-3"]["outputs"]["exitCode"] == "3"
        assert "exit code 3" in by_name["exits-3"]["message"]
        assert "about to fail" in by_name["exits-3"]["message"]
        assert by_name["image-only"]["phase"] == "Failed"
        assert "'kaic-no-such-tool': not found on the pod runner's PATH" in by_name["image-only"]["message"]
        cleanup = by_name[f"{wf['metadata']['name']}.onExit"]
        assert cleanup["phase"] == "Succeeded"
        assert cleanup["hostNodeName"] == NODE


class TemplateAppearsLate(KubeCluster):
    """kaic's client, except that the WorkflowTemplate is created the moment kaic first checks for it: after
    the controller has already errored the first Workflow, which is the order of events when the controller's
    cache trails a template `kaic submit` has just applied (seen in CI)."""

    def __init__(self, kc: KubeCluster, template: dict[str, Any]) -> None:
        self.__dict__.update(kc.__dict__)
        self.template: dict[str, Any] | None = template

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        if plural == "workflowtemplates" and self.template is not None:
            self.create(self.template)
            self.template = None
        return super().get(group_version, plural, name, namespace)


def test_a_workflow_errored_because_the_controller_had_not_seen_its_template_is_submitted_again(
        kc: KubeCluster) -> None:
    with live.namespace(kc, "argo-late", restricted=False) as ns:
        template = {"apiVersion": GV, "kind": "WorkflowTemplate", "metadata": {"name": "late", "namespace": ns},
                    "spec": {"entrypoint": "hello", "templates": [{"name": "hello", "container": {
                        "image": "busybox", "command": ["echo"], "args": ["hello"]}}]}}
        out = io.StringIO()
        name = argo_kube.submit_once_accepted(TemplateAppearsLate(kc, template), "late", ns, {}, out=out)
        errored = [wf for wf in kc.list(GV, "workflows", ns)
                   if (wf.get("status") or {}).get("phase") == "Error" and wf["metadata"]["name"] != name]
        assert f"has not yet seen WorkflowTemplate {ns}/late" in out.getvalue()
        assert "submitting again" in out.getvalue()
        assert not errored or all(wf["metadata"].get("deletionTimestamp") for wf in errored)
        waited = argo_kube.wait_for_workflow(kc, name, ns, timeout_s=SMALL_DEADLINE_S, poll_s=1.0, out=out)
        assert waited.phase == "Succeeded", out.getvalue()


# --- kaic's own workflow ---------------------------------------------------------------------------------


def kaic(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kaic.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_the_compiled_template_and_cron_workflow_are_accepted_and_a_broken_one_refused(
        kc: KubeCluster, tmp_path: Path) -> None:
    done = kaic("compile", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    docs = [yaml.safe_load(p.read_text()) for p in sorted(tmp_path.glob("*.yaml"))]
    assert sorted(d["kind"] for d in docs) == ["CronWorkflow", "WorkflowTemplate"]
    with live.namespace(kc, "argo-accept") as ns:
        for doc in docs:
            sent = {**doc, "metadata": {**doc["metadata"], "namespace": ns}}
            stored = kc.create(sent)
            assert live.dropped(sent["spec"], stored["spec"]) == [], doc["kind"]
        template = next(d for d in docs if d["kind"] == "WorkflowTemplate")
        broken = {**template, "metadata": {"name": "broken", "namespace": ns},
                  "spec": {**template["spec"], "templates": "not-a-list"}}
        with pytest.raises(ClusterError) as refused:
            kc.create(broken)
        assert refused.value.status == 422
        assert "spec.templates" in str(refused.value)


def dev_profile(tmp_path: Path) -> Path:
    """The steps' profile on the dev cluster: its pods are local processes, so the steps use the `local`
    platform (training through torchrun here, serving with a local server); S3 and MLflow are real servers."""
    path = tmp_path / "devcluster.yaml"
    path.write_text(yaml.safe_dump({
        "name": "devcluster", "description": "kaic's steps as pod-runner processes on the dev cluster",
        "platform": "local", "cluster": "kaic-devcluster",
        "training": {"world_size": 2, "steps": 60, "launcher": "local"},
        "serving": {"concurrency": [1, 4], "duration_s": 1, "warmup_s": 0.5},
        "thresholds": [{"metric": "holdout_accuracy", "op": ">=", "value": 0.9}],
    }))
    return path


def prepare_kaic_namespace(kc: KubeCluster, ns: str, s3: S3Server) -> None:
    """What docs/deploy.md asks for: the steps' ServiceAccount and the kaic-object-store Secret."""
    live.service_account(kc, ns, "kaic-steps")
    kc.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kaic-object-store", "namespace": ns},
               "stringData": {"endpoint": s3.endpoint_url, "accessKey": s3.access_key, "secretKey": s3.secret_key}})
    s3.create_bucket("kaic")


def submit(kubeconfig: str, ns: str, profile: Path, mlflow: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return kaic("submit", "--kubeconfig", kubeconfig, "--namespace", ns, "--profile", str(profile),
                "--suite", "quick", "-p", "object-store=s3://kaic/objects", "-p", "results=s3://kaic/results",
                "-p", f"mlflow-uri={mlflow}", *extra, "--wait", "--timeout", str(KAIC_DEADLINE_S), "--poll", "2",
                timeout=KAIC_DEADLINE_S + 120)


STEPS = ("provision", "data", "train", "serve", "report")


def submitted(kc: KubeCluster, ns: str, done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    line = next((x for x in done.stdout.splitlines() if x.startswith("submitted Workflow ")), "")
    assert line, done.stdout + done.stderr
    name = line.split("/")[-1].strip()
    return kc.get(GV, "workflows", name, ns) or {}


def test_kaic_workflow_succeeds_under_the_real_controller_with_every_step_run_by_the_pod_runner(
        kubeconfig: str, kc: KubeCluster, s3_server: S3Server, mlflow_server: str, tmp_path: Path) -> None:  # noqa: F811
    with live.namespace(kc, "kaic-argo") as ns:  # Pod Security `restricted`: kaic's pods must meet it
        prepare_kaic_namespace(kc, ns, s3_server)
        done = submit(kubeconfig, ns, dev_profile(tmp_path), mlflow_server)
        wf = submitted(kc, ns, done)
        by_name = nodes(wf)
        assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-2000:]}\n" + json.dumps(
            {k: (n.get("phase"), n.get("message")) for k, n in by_name.items()}, indent=1)
        assert f"Workflow {ns}/{wf['metadata']['name']} Succeeded" in done.stdout
        assert wf["status"]["phase"] == "Succeeded"
        for step in STEPS:
            assert by_name[step]["phase"] == "Succeeded", step
            assert last_pod(wf, step)["hostNodeName"] == NODE, step
        teardown = by_name[f"{wf['metadata']['name']}.onExit"]
        assert teardown["phase"] == "Succeeded"
        assert last_pod(wf, f"{wf['metadata']['name']}.onExit")["hostNodeName"] == NODE
        run = wf["metadata"]["name"]
        keys = [o.object_name for o in s3_server.client().list_objects("kaic", prefix="results/", recursive=True)]
        assert any(run in k for k in keys), keys[:20]


def test_kaic_workflow_whose_step_fails_ends_failed_and_teardown_still_runs(
        kubeconfig: str, kc: KubeCluster, s3_server: S3Server, mlflow_server: str, tmp_path: Path) -> None:  # noqa: F811
    with live.namespace(kc, "kaic-argo-fail") as ns:
        prepare_kaic_namespace(kc, ns, s3_server)
        done = submit(kubeconfig, ns, dev_profile(tmp_path), mlflow_server, "-p", "world-size=0")
        wf = submitted(kc, ns, done)
        by_name = nodes(wf)
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
        assert wf["status"]["phase"] == "Failed"
        assert by_name["train"]["phase"] == "Failed"
        assert last_pod(wf, "train")["outputs"]["exitCode"] != "0"
        assert by_name["serve"]["phase"] == "Omitted"
        teardown = last_pod(wf, f"{wf['metadata']['name']}.onExit")
        assert teardown["hostNodeName"] == NODE
        assert teardown["outputs"]["exitCode"] == "0", teardown.get("message")


def test_the_compiled_cron_workflow_every_minute_starts_a_workflow(
        kubeconfig: str, kc: KubeCluster, tmp_path: Path) -> None:
    with live.namespace(kc, "kaic-cron") as ns:
        live.service_account(kc, ns, "kaic-steps")
        done = kaic("schedule", "--kubeconfig", kubeconfig, "--namespace", ns, "--cron", "* * * * *",
                    "--profile", str(dev_profile(tmp_path)))
        assert done.returncode == 0, done.stderr
        assert f"CronWorkflow {ns}/kaic-conformance-nightly created" in done.stdout
        scheduled = time.monotonic()
        selector = "workflows.argoproj.io/cron-workflow=kaic-conformance-nightly"
        started: list[dict[str, Any]] = []
        while not started and time.monotonic() - scheduled < CRON_DEADLINE_S:
            started = kc.list(GV, "workflows", ns, selector)
            time.sleep(1)
        waited = time.monotonic() - scheduled
        # The trigger label comes from the template's spec.workflowMetadata, which the controller applies when it
        # first operates the Workflow, a moment after the cron controller created it.
        labels: dict[str, str] = {}
        while started and "kaic.dev/trigger" not in labels and time.monotonic() - scheduled < CRON_DEADLINE_S:
            wf = kc.get(GV, "workflows", started[0]["metadata"]["name"], ns) or {}
            labels = (wf.get("metadata") or {}).get("labels") or {}
            time.sleep(0.5)
        # Stop it at once: its steps would run a whole conformance run.
        kc.request("PATCH", resource_path(GV, "cronworkflows", ns, "kaic-conformance-nightly"),
                   body={"spec": {"suspend": True}}, content_type="application/merge-patch+json")
        for wf in started:
            kc.delete(GV, "workflows", wf["metadata"]["name"], ns)
        assert started, f"no Workflow from the CronWorkflow within {CRON_DEADLINE_S:.0f} s"
        print(f"first scheduled Workflow {started[0]['metadata']['name']} seen {waited:.0f} s after `kaic schedule`")
        assert started[0]["spec"]["workflowTemplateRef"]["name"] == "kaic-conformance"
        assert labels.get("kaic.dev/trigger") == "cron", labels
