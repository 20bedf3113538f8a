"""The nightly CronWorkflow `kaic-conformance-nightly`: a pure function of `PipelineConfig`.

It holds no steps of its own: `workflowSpec.workflowTemplateRef` points at the `kaic-conformance`
WorkflowTemplate, so the schedule and the workflow are updated independently. `schedules` (a list)
is the Argo >= 3.6 field; v4 dropped the singular `schedule`.
"""

from __future__ import annotations

from collections.abc import Mapping

from hera.workflows import CronWorkflow, Parameter
from hera.workflows import models as m

from kaic import SUITE_VERSION
from pipelines.config import CRON_NAME, TEMPLATE_NAME, PipelineConfig

HISTORY_SUCCEEDED = 7  # a week of nightly runs
HISTORY_FAILED = 14  # failures are kept longer: they are what someone will look into
STARTING_DEADLINE_S = 3600  # a run missed by more than an hour (controller down) is skipped


def build_cron(config: PipelineConfig, arguments: Mapping[str, str] | None = None) -> CronWorkflow:
    """The CronWorkflow; `arguments` override the template's parameter defaults for scheduled runs."""
    return CronWorkflow(
        api_version="argoproj.io/v1alpha1",
        kind="CronWorkflow",
        name=CRON_NAME,
        labels={"app.kubernetes.io/name": "kaic", "app.kubernetes.io/part-of": "kaic",
                "app.kubernetes.io/version": SUITE_VERSION},
        annotations={"workflows.argoproj.io/description": f"nightly run of WorkflowTemplate {TEMPLATE_NAME}"},
        schedules=list(config.schedules),
        timezone=config.timezone,
        concurrency_policy="Forbid",  # never two conformance runs on one cluster at once
        starting_deadline_seconds=STARTING_DEADLINE_S,
        successful_jobs_history_limit=HISTORY_SUCCEEDED,
        failed_jobs_history_limit=HISTORY_FAILED,
        workflow_metadata=m.WorkflowMetadata(labels={"kaic.dev/trigger": "cron"}),
        workflow_template_ref=m.WorkflowTemplateRef(name=TEMPLATE_NAME),
        arguments=[Parameter(name=k, value=v) for k, v in sorted((arguments or {}).items())] or None,
    )
