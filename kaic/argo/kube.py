"""The Argo calls kaic makes, through the Kubernetes API instead of an Argo Server (`--kubeconfig`).

The workflow-controller only watches custom resources, so an Argo Server is not needed to run workflows:
the WorkflowTemplate and CronWorkflow are applied server-side, a Workflow is submitted from the template by
creating it with `spec.workflowTemplateRef` (what `argo submit --from` does), and waiting polls its status.

The controller resolves `workflowTemplateRef` from its informer cache, not from the API server, so a Workflow
submitted right after its template was created can end in Error ("workflowtemplates ... not found") before the
cache has caught up. `submit_once_accepted` watches for exactly that and submits again.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TextIO

from hera.workflows import models as m

from kaic.argo.connection import ArgoServerError
from kaic.argo.submit import SubmitResult
from kaic.argo.wait import FINAL_PHASES, WaitResult, _NodePrinter
from kaic.cluster import ClusterError, DeadlineExceededError, wait_until
from kaic.cluster.kube import KubeCluster
from pipelines.config import TEMPLATE_NAME, PipelineConfig
from pipelines.conformance import build_workflow

GV = "argoproj.io/v1alpha1"
LABEL_TEMPLATE = "workflows.argoproj.io/workflow-template"


def connect(kubeconfig: str, context: str | None = None) -> KubeCluster:
    """A client for the cluster (ConfigError for an unreadable kubeconfig)."""
    return KubeCluster.connect(kubeconfig=kubeconfig, context=context)


def _fail(action: str, exc: ClusterError) -> ArgoServerError:
    return ArgoServerError(f"{action}: {str(exc).splitlines()[0][:300]}")


def apply(client: KubeCluster, body: dict[str, Any], namespace: str) -> str:
    """Server-side apply of a WorkflowTemplate or CronWorkflow; returns "created" or "updated"."""
    kind, name = body["kind"], body["metadata"]["name"]
    plural = {"WorkflowTemplate": "workflowtemplates", "CronWorkflow": "cronworkflows"}[kind]
    obj = {**body, "metadata": {**body["metadata"], "namespace": namespace}}
    try:
        existed = client.get(GV, plural, name, namespace) is not None
        client.apply(obj)
    except ClusterError as exc:
        raise _fail(f"apply {kind} {namespace}/{name}", exc) from None
    return "updated" if existed else "created"


def workflow_from_template(template: str, namespace: str, parameters: Mapping[str, str]) -> dict[str, Any]:
    """The Workflow `argo submit --from workflowtemplate/<template>` creates."""
    spec: dict[str, Any] = {"workflowTemplateRef": {"name": template}}
    if parameters:
        spec["arguments"] = {"parameters": [{"name": k, "value": v} for k, v in sorted(parameters.items())]}
    return {"apiVersion": GV, "kind": "Workflow",
            "metadata": {"generateName": f"{template}-", "namespace": namespace,
                         "labels": {"app.kubernetes.io/part-of": "kaic", LABEL_TEMPLATE: template}},
            "spec": spec}


def submit_from_template(client: KubeCluster, template: str, namespace: str, parameters: Mapping[str, str]) -> str:
    try:
        created = client.create(workflow_from_template(template, namespace, parameters))
    except ClusterError as exc:
        raise _fail(f"submit WorkflowTemplate {namespace}/{template}", exc) from None
    name = str((created.get("metadata") or {}).get("name") or "")
    if not name:
        raise ArgoServerError(f"the API server returned a Workflow without a name for {namespace}/{template}")
    return name


ACCEPT_DEADLINE_S = 30.0  # how long to watch a new Workflow for the controller's first verdict on it
RESUBMITS = 5


def template_unseen(phase: str | None, message: str, template: str) -> bool:
    """Whether the controller errored a Workflow only because its cache lacked `template` (Argo's message is
    the API's NotFound: `workflowtemplates.argoproj.io "<name>" not found`)."""
    return phase == "Error" and f'workflowtemplates.argoproj.io "{template}" not found' in message


def _first_phase(client: KubeCluster, name: str, namespace: str, *, deadline_s: float,
                 clock: Callable[[], float], sleep: Callable[[float], None]) -> tuple[str | None, str]:
    """The Workflow's phase and message once the controller has set one (None when it has not by the deadline)."""
    def phase() -> tuple[str | None, str] | None:
        try:
            status = ((client.get(GV, "workflows", name, namespace) or {}).get("status") or {})
        except ClusterError:
            return None  # a blip: read it again
        return (str(status["phase"]), str(status.get("message") or "")) if status.get("phase") else None

    try:
        return wait_until(phase, deadline_s, f"a phase of Workflow {namespace}/{name}", 0.5, clock, sleep)
    except DeadlineExceededError:
        return None, ""


def submit_once_accepted(client: KubeCluster, template: str, namespace: str, parameters: Mapping[str, str], *,
                         out: TextIO, deadline_s: float = ACCEPT_DEADLINE_S,
                         clock: Callable[[], float] = time.monotonic,
                         sleep: Callable[[float], None] = time.sleep) -> str:
    """Submit a Workflow from `template` and watch it until the controller has a phase for it; when the
    controller errored it only because its cache has not yet seen `template` (which the API server has),
    delete it and submit again, up to RESUBMITS times. Returns the accepted Workflow's name."""
    for attempt in range(RESUBMITS):
        name = submit_from_template(client, template, namespace, parameters)
        phase, message = _first_phase(client, name, namespace, deadline_s=deadline_s, clock=clock, sleep=sleep)
        if not template_unseen(phase, message, template):
            return name
        try:
            exists = client.get(GV, "workflowtemplates", template, namespace) is not None
        except ClusterError as exc:
            raise _fail(f"read WorkflowTemplate {namespace}/{template}", exc) from None
        if not exists:
            return name  # really gone: the wait reports the controller's error
        print(f"Workflow {namespace}/{name}: the workflow-controller has not yet seen WorkflowTemplate "
              f"{namespace}/{template} (its cache trails the API server); submitting again", file=out, flush=True)
        try:
            client.delete(GV, "workflows", name, namespace)
        except ClusterError as exc:
            raise _fail(f"delete Workflow {namespace}/{name}", exc) from None
        sleep(min(8.0, 0.5 * 2 ** attempt))
    return submit_from_template(client, template, namespace, parameters)  # the wait reports what happens


def wait_for_workflow(client: KubeCluster, name: str, namespace: str, *, timeout_s: float, poll_s: float = 2.0,
                      out: TextIO, clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep,
                      now: Callable[[], datetime] = datetime.now) -> WaitResult:
    """Poll the Workflow until a final phase or `timeout_s`, printing node phases as they change."""
    deadline = clock() + timeout_s
    printer = _NodePrinter(out, now)
    phase: str | None = None
    warned = False
    while True:
        try:
            doc = client.get(GV, "workflows", name, namespace)
        except ClusterError as exc:  # a blip during a long wait: say so once, keep polling
            if not warned:
                print(f"warning: read Workflow {namespace}/{name}: {exc}; retrying until the deadline", file=out,
                      flush=True)
                warned = True
        else:
            if doc is None:
                raise ArgoServerError(f"Workflow {namespace}/{name} no longer exists")
            wf = m.Workflow.model_validate(doc)
            printer.update(wf)
            phase = (wf.status.phase if wf.status else None) or "Pending"
            if phase in FINAL_PHASES:
                return WaitResult(name, phase, timed_out=False, message=(wf.status.message if wf.status else "") or "")
        left = deadline - clock()
        if left <= 0:
            return WaitResult(name, phase, timed_out=True)
        sleep(min(poll_s, left))


def submit_and_wait(client: KubeCluster, config: PipelineConfig, *, namespace: str,
                    parameters: Mapping[str, str] | None = None, wait: bool = True, timeout_s: float = 3600.0,
                    poll_s: float = 2.0, out: TextIO | None = None) -> SubmitResult:
    """`kaic.argo.submit_and_wait` through the Kubernetes API."""
    out = out or sys.stdout
    applied = apply(client, build_workflow(config).to_dict(), namespace)
    print(f"WorkflowTemplate {namespace}/{TEMPLATE_NAME} {applied}", file=out, flush=True)
    name = submit_once_accepted(client, TEMPLATE_NAME, namespace, parameters or {}, out=out)
    print(f"submitted Workflow {namespace}/{name}", file=out, flush=True)
    if not wait:
        return SubmitResult(name, applied, None)
    return SubmitResult(name, applied, wait_for_workflow(client, name, namespace, timeout_s=timeout_s,
                                                         poll_s=poll_s, out=out))
