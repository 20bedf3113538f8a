"""Create-or-update of the WorkflowTemplate and CronWorkflow, and submitting a Workflow from the template.

Create first; on 409 AlreadyExists read the live object and update with its resourceVersion
(Kubernetes refuses an update of a custom resource without one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hera.exceptions import AlreadyExists
from hera.workflows import WorkflowsService
from hera.workflows import models as m

from kaic.argo.connection import ArgoServerError, call


def _with_version(body: dict[str, Any], version: str | None) -> dict[str, Any]:
    meta = {k: v for k, v in body.get("metadata", {}).items() if k not in ("namespace", "resourceVersion")}
    if version:
        meta["resourceVersion"] = version
    return {**body, "metadata": meta}


def _create_or_update(service: WorkflowsService, what: str, body: dict[str, Any], namespace: str,
                      model: Any, create: Callable[[Any], Any], read: Callable[[str], Any],
                      update: Callable[[str, Any], Any]) -> str:
    """Create `body`; on AlreadyExists read the live object and update it at its resourceVersion.
    Returns "created" or "updated"."""
    name = body["metadata"]["name"]
    action = f"{what} {namespace}/{name}"
    try:
        fresh = model.model_validate(_with_version(body, None))
        call(service, f"create {action}", lambda: create(fresh), allow=(AlreadyExists,))
        return "created"
    except AlreadyExists:
        pass
    live = call(service, f"read {action}", lambda: read(name))
    updated = model.model_validate(_with_version(body, live.metadata.resource_version))
    call(service, f"update {action}", lambda: update(name, updated))
    return "updated"


def apply_workflow_template(service: WorkflowsService, body: dict[str, Any], namespace: str) -> str:
    """Create or update; returns "created" or "updated"."""
    return _create_or_update(
        service, "WorkflowTemplate", body, namespace, m.WorkflowTemplate,
        create=lambda t: service.create_workflow_template(
            m.WorkflowTemplateCreateRequest(namespace=namespace, template=t), namespace=namespace),
        read=lambda name: service.get_workflow_template(name, namespace=namespace),
        update=lambda name, t: service.update_workflow_template(
            name, m.WorkflowTemplateUpdateRequest(namespace=namespace, template=t), namespace=namespace),
    )


def apply_cron_workflow(service: WorkflowsService, body: dict[str, Any], namespace: str) -> str:
    """Create or update; returns "created" or "updated"."""
    return _create_or_update(
        service, "CronWorkflow", body, namespace, m.CronWorkflow,
        create=lambda c: service.create_cron_workflow(
            m.CreateCronWorkflowRequest(namespace=namespace, cron_workflow=c), namespace=namespace),
        read=lambda name: service.get_cron_workflow(name, namespace=namespace),
        update=lambda name, c: service.update_cron_workflow(
            name, m.UpdateCronWorkflowRequest(namespace=namespace, cron_workflow=c), namespace=namespace),
    )


def submit_from_template(service: WorkflowsService, template: str, namespace: str,
                         parameters: Mapping[str, str]) -> str:
    """Submit a Workflow from the WorkflowTemplate; returns the new Workflow's name."""
    opts = m.SubmitOpts(
        parameters=[f"{k}={v}" for k, v in sorted(parameters.items())] or None,
        labels="app.kubernetes.io/part-of=kaic",
    )
    submit = m.WorkflowSubmitRequest(namespace=namespace, resource_kind="WorkflowTemplate",
                                     resource_name=template, submit_options=opts)
    wf = call(service, f"submit WorkflowTemplate {namespace}/{template}",
              lambda: service.submit_workflow(submit, namespace=namespace))
    name = wf.metadata.name
    if not name:
        raise ArgoServerError(f"Argo Server {service.host} returned a Workflow without a name")
    return name
