"""The conformance WorkflowTemplate `kaic-conformance`: a pure function of `PipelineConfig`.

    provision ──> data ──> train ──> serve ──> report          (DAG `conformance`)
                                                               onExit: teardown

Each step is one container running `kaic step NAME ...` in `{{workflow.parameters.image}}`.
How failures flow (Argo's enhanced `depends`; a task whose expression is false is *Omitted*):

- data runs after provision Succeeded *or Failed*: provision fails when the platform lacks a
  requirement, which must not hide the workload checks (every check is evaluated, never stopping
  at the first failure). Only an Errored provision pod (infrastructure) omits the rest.
- train needs data Succeeded, serve needs train Succeeded: with data Failed, train and serve are
  Omitted (there is no dataset to train on, no model to serve).
- report runs once serve is final in *any* phase, so the report is written whatever failed.
- `dag.target` names both serve and report, with `failFast: false`: Argo derives a DAG's phase
  from its target tasks, an Omitted task inheriting the phase of the failed step above it
  (`assessDAGPhase`). So a failed step fails the workflow even though report succeeded, and
  failFast off makes Argo wait for report before deciding.
- teardown is the workflow's onExit handler: it runs after everything, whatever happened.

Nothing here touches a cluster; submission lives in `kaic/argo/`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hera.workflows import DAG, Container, Parameter, Task, WorkflowTemplate
from hera.workflows import models as m

from kaic import SUITE_VERSION
from pipelines.config import TEMPLATE_NAME, PipelineConfig

ENTRYPOINT = "conformance"
EXIT_HANDLER = "teardown"
SERVICE_ACCOUNT = "kaic-steps"  # created by charts/kaic (steps.serviceAccount.name)
OBJECT_STORE_SECRET = "kaic-object-store"  # charts/kaic objectStore.credentialsSecret
RUN_ID_LABEL = "kaic.dev/run-id"
WORKFLOW_DEADLINE_S = 6 * 3600  # the whole run, exit handler excluded

DEPENDS: dict[str, str] = {
    "data": "provision.Succeeded || provision.Failed",
    "train": "data.Succeeded",
    "serve": "train.Succeeded",
    "report": "serve.Succeeded || serve.Failed || serve.Errored || serve.Skipped || serve.Omitted",
}
DAG_TARGET = "serve report"


@dataclass(frozen=True)
class StepPod:
    """What one step's pod asks for: resources, a deadline, and whether Argo retries it."""

    cpu: str
    memory: str
    memory_limit: str
    deadline_s: int
    retried: bool = False  # idempotent steps whose failures are mostly infrastructure
    flags: tuple[str, ...] = ()  # step-specific flags (workflow parameter references)


# Upper bounds generous enough for the `full` suite on a busy cluster; a profile's own per-step
# timeouts (probes/training/serving timeout_s) are enforced inside the steps.
STEPS: dict[str, StepPod] = {
    "provision": StepPod("100m", "256Mi", "512Mi", 900, retried=True),
    "data": StepPod("500m", "1Gi", "2Gi", 900),
    "train": StepPod("1", "2Gi", "8Gi", 7200, flags=(
        "--world-size", "{{workflow.parameters.world-size}}",
        "--accelerators-per-worker", "{{workflow.parameters.accelerators-per-worker}}",
    )),
    "serve": StepPod("500m", "1Gi", "4Gi", 1800),
    "report": StepPod("250m", "512Mi", "1Gi", 600),
    "teardown": StepPod("100m", "256Mi", "512Mi", 900, retried=True),
}

# Workflow parameter -> PipelineConfig field giving its default, and what it means.
PARAMETERS: tuple[tuple[str, str, str], ...] = (
    ("profile", "profile", "platform profile: built-in (local, generic, eks, gke, aks, openshift) or a file"),
    ("suite", "suite", "quick or full"),
    ("image", "image", "the kaic step image every step runs in"),
    ("platform", "platform", "platform label for results (empty: the profile's)"),
    ("world-size", "world_size", "distributed training workers"),
    ("accelerators-per-worker", "accelerators_per_worker", "accelerators per training worker (0: CPU)"),
    ("object-store", "object_store", "object store URI, e.g. s3://kaic/objects (empty: the profile's)"),
    ("results", "results", "results dataset URI (empty: the profile's)"),
    ("mlflow-uri", "mlflow_uri", "MLflow tracking URI (empty: the profile's)"),
)


def _param(name: str) -> str:
    return "{{workflow.parameters." + name + "}}"


def step_args(step: str) -> list[str]:
    """`kaic step NAME` and its flags, all taken from workflow parameters."""
    common = [
        "step", step,
        "--run-id", "{{workflow.name}}",
        "--profile", _param("profile"),
        "--platform", _param("platform"),
        "--suite", _param("suite"),
        "--object-store", _param("object-store"),
        "--results", _param("results"),
        "--mlflow-uri", _param("mlflow-uri"),
        "--image", _param("image"),  # the pods a step creates (train workers, probes, serving) run it too
    ]
    return common + list(STEPS[step].flags)


def _secret_env(name: str, key: str) -> m.EnvVar:
    # optional: a missing Secret (or key) leaves the variable unset, and the step uses its defaults.
    ref = m.SecretKeySelector(name=OBJECT_STORE_SECRET, key=key, optional=True)
    return m.EnvVar(name=name, value_from=m.EnvVarSource(secret_key_ref=ref))


ENV: tuple[m.EnvVar, ...] = (
    _secret_env("KAIC_S3_ENDPOINT", "endpoint"),
    _secret_env("KAIC_S3_ACCESS_KEY", "accessKey"),
    _secret_env("KAIC_S3_SECRET_KEY", "secretKey"),
)

# The Kubernetes "restricted" Pod Security Standard. No runAsUser: the image sets a numeric
# non-root USER, and OpenShift assigns its own UID range.
POD_SECURITY = m.PodSecurityContext(
    run_as_non_root=True, seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
)
CONTAINER_SECURITY = m.SecurityContext(
    allow_privilege_escalation=False,
    capabilities=m.Capabilities(drop=["ALL"]),
    run_as_non_root=True,
    seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
)
RETRY = m.RetryStrategy(
    limit=m.IntOrString("2"),
    retry_policy="OnError",  # pod or node errors, not a step that ran and reported failures
    backoff=m.Backoff(duration="10s", factor=m.IntOrString("2"), max_duration="5m"),
)


def _step_container(step: str) -> Container:
    pod = STEPS[step]
    return Container(
        name=step,
        image=_param("image"),
        command=["kaic"],
        args=step_args(step),
        env=list(ENV),
        resources=m.ResourceRequirements(
            requests={"cpu": m.Quantity(pod.cpu), "memory": m.Quantity(pod.memory)},
            limits={"memory": m.Quantity(pod.memory_limit)},
        ),
        security_context=CONTAINER_SECURITY,
        active_deadline_seconds=pod.deadline_s,
        retry_strategy=RETRY if pod.retried else None,
        labels={RUN_ID_LABEL: "{{workflow.name}}", "kaic.dev/step": step},
    )


def build_workflow(config: PipelineConfig) -> WorkflowTemplate:
    """The conformance WorkflowTemplate; `config` only sets the parameters' default values."""
    defaults = config.model_dump()
    with WorkflowTemplate(
        api_version="argoproj.io/v1alpha1",
        kind="WorkflowTemplate",
        name=TEMPLATE_NAME,
        labels={"app.kubernetes.io/name": "kaic", "app.kubernetes.io/part-of": "kaic",
                "app.kubernetes.io/version": SUITE_VERSION},
        annotations={"workflows.argoproj.io/description":
                     "kaic conformance: provision, data, train, serve, report; teardown on exit"},
        entrypoint=ENTRYPOINT,
        on_exit=EXIT_HANDLER,
        service_account_name=SERVICE_ACCOUNT,
        security_context=POD_SECURITY,
        active_deadline_seconds=WORKFLOW_DEADLINE_S,
        arguments=[
            Parameter(name=name, value=str(defaults[field]), description=doc,
                      enum=["quick", "full"] if name == "suite" else None)
            for name, field, doc in PARAMETERS
        ],
    ) as wt:
        with DAG(name=ENTRYPOINT, target=DAG_TARGET, fail_fast=False):
            for step in ("provision", "data", "train", "serve", "report"):
                Task(name=step, template=step, depends=DEPENDS.get(step))
        for step in STEPS:
            _step_container(step)
    return wt
