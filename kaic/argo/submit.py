"""`submit_and_wait`: apply the WorkflowTemplate, submit a Workflow from it, optionally wait for it."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from hera.workflows import WorkflowsService

from kaic.argo.apply import apply_workflow_template, submit_from_template
from kaic.argo.wait import WaitResult, wait_for_workflow
from pipelines.config import TEMPLATE_NAME, PipelineConfig
from pipelines.conformance import build_workflow


@dataclass(frozen=True)
class SubmitResult:
    name: str
    template: str  # "created" or "updated"
    wait: WaitResult | None  # None when not waiting

    @property
    def exit_code(self) -> int:
        return self.wait.exit_code if self.wait else 0


def submit_and_wait(
    service: WorkflowsService,
    config: PipelineConfig,
    *,
    namespace: str,
    parameters: Mapping[str, str] | None = None,
    wait: bool = True,
    timeout_s: float = 3600.0,
    poll_s: float = 2.0,
    out: TextIO | None = None,
) -> SubmitResult:
    """Create-or-update `kaic-conformance` from `config`, submit it with `parameters`, and (with `wait`)
    poll until a final phase or `timeout_s`. Raises ConfigError (bad input, refused token) or
    ArgoServerError (unreachable server, server error)."""
    out = out or sys.stdout
    body = build_workflow(config).to_dict()
    applied = apply_workflow_template(service, body, namespace)
    print(f"WorkflowTemplate {namespace}/{TEMPLATE_NAME} {applied}", file=out, flush=True)
    name = submit_from_template(service, TEMPLATE_NAME, namespace, parameters or {})
    print(f"submitted Workflow {namespace}/{name}", file=out, flush=True)
    if not wait:
        return SubmitResult(name, applied, None)
    result = wait_for_workflow(service, name, namespace, timeout_s=timeout_s, poll_s=poll_s, out=out)
    return SubmitResult(name, applied, result)
