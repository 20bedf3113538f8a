"""Talking to an Argo Server: connection and token, create-or-update, submit, and waiting with a deadline.

Everything takes an injected Hera `WorkflowsService`, so tests point it at a local fake server.
`submit_and_wait` is the one call `kaic run --backend argo` needs.
"""

from kaic.argo.apply import apply_cron_workflow, apply_workflow_template, submit_from_template
from kaic.argo.connection import ArgoServerError, argo_token, check_url, connect
from kaic.argo.submit import SubmitResult, submit_and_wait
from kaic.argo.wait import FINAL_PHASES, WaitResult, wait_for_workflow

__all__ = [
    "FINAL_PHASES", "ArgoServerError", "SubmitResult", "WaitResult", "apply_cron_workflow",
    "apply_workflow_template", "argo_token", "check_url", "connect", "submit_and_wait",
    "submit_from_template", "wait_for_workflow",
]
