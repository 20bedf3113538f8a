"""What the pod runner needs to know about an Argo workflow pod, as pure functions over the pod's JSON.

The workflow-controller (legacy layout, the default) builds each pod with an `init` container, a `wait`
sidecar and the user's `main` container, whose command is wrapped as
`/var/run/argo/argoexec emissary [log flags] -- <command> <args>`. The template travels as JSON in the
`ARGO_TEMPLATE` variable (on the init container; the word `offloaded` means it sits in the ConfigMap named
after the pod). The wait container reports outputs by writing a `WorkflowTaskResult` named after the node
id; the controller only treats a node as done once that result carries
`workflows.argoproj.io/report-outputs-completed: "true"`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

LABEL_WORKFLOW = "workflows.argoproj.io/workflow"
LABEL_COMPLETED = "workflows.argoproj.io/report-outputs-completed"
LABEL_INSTANCE_ID = "workflows.argoproj.io/controller-instanceid"
ANNOTATION_NODE_ID = "workflows.argoproj.io/node-id"
ENV_TEMPLATE = "ARGO_TEMPLATE"
ENV_NODE_ID = "ARGO_NODE_ID"
ENV_INCLUDE_SCRIPT_OUTPUT = "ARGO_INCLUDE_SCRIPT_OUTPUT"
ENV_ARGS_FILE = "ARGO_CONTAINER_ARGS_FILE"
OFFLOADED = "offloaded"
SCRIPT_PATH = "/argo/staging/script"  # where the init container writes a script template's source
MAIN, WAIT, INIT = "main", "wait", "init"
MAX_RESULT = 256 * 1024  # the executor keeps the last 256 kB of stdout as `result`


class NotEmulatedError(Exception):
    """The pod asks for something the pod runner cannot do; the message says what."""


@dataclass(frozen=True)
class ArgoPod:
    """The parts of an Argo workflow pod the runner acts on."""

    namespace: str
    name: str
    workflow: str
    workflow_uid: str
    node_id: str
    instance_id: str | None
    template: dict[str, Any]
    include_script_output: bool


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod.get("spec", {}).get("containers") or [])


def container(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((c for c in containers(pod) if c.get("name") == name), None)


def is_argo_pod(pod: dict[str, Any]) -> bool:
    return LABEL_WORKFLOW in (pod.get("metadata", {}).get("labels") or {})


def _env_value(pod: dict[str, Any], name: str) -> str | None:
    spec = pod.get("spec", {})
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for e in c.get("env") or []:
            if e.get("name") == name and "value" in e:
                return str(e["value"])
    return None


def argo_pod(pod: dict[str, Any], offloaded: dict[str, str] | None = None) -> ArgoPod:
    """Read an Argo pod; `offloaded` is the data of the ConfigMap named after the pod, when the controller
    moved ARGO_TEMPLATE there. Raises NotEmulatedError for layouts the runner does not emulate."""
    meta = pod.get("metadata", {})
    labels = meta.get("labels") or {}
    names = [c.get("name") for c in containers(pod)]
    if MAIN not in names:
        raise NotEmulatedError(f"pod {meta.get('name')}: no `main` container (containerSet or init-less layouts "
                          "are not emulated by the pod runner)")
    extra = sorted(str(n) for n in names if n not in (MAIN, WAIT))
    if extra:
        raise NotEmulatedError(f"pod {meta.get('name')}: sidecar containers {extra} are not emulated by the pod runner")
    owner: dict[str, Any] = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "Workflow"), {})
    raw = _env_value(pod, ENV_TEMPLATE)
    if raw == OFFLOADED:
        raw = (offloaded or {}).get(ENV_TEMPLATE)
    if not raw:
        raise NotEmulatedError(f"pod {meta.get('name')}: no {ENV_TEMPLATE} (not built by the workflow-controller?)")
    node_id = (meta.get("annotations") or {}).get(ANNOTATION_NODE_ID) or _env_value(pod, ENV_NODE_ID)
    if not node_id:
        raise NotEmulatedError(f"pod {meta.get('name')}: no node id (annotation {ANNOTATION_NODE_ID})")
    return ArgoPod(
        namespace=str(meta.get("namespace")), name=str(meta.get("name")), workflow=str(labels[LABEL_WORKFLOW]),
        workflow_uid=str(owner.get("uid", "")), node_id=str(node_id), instance_id=labels.get(LABEL_INSTANCE_ID),
        template=json.loads(raw), include_script_output=_env_value(pod, ENV_INCLUDE_SCRIPT_OUTPUT) == "true",
    )


def uses_offloaded(pod: dict[str, Any]) -> bool:
    """True when the template or main's args live in the ConfigMap named after the pod."""
    main = container(pod, MAIN) or {}
    args_file = any(e.get("name") == ENV_ARGS_FILE for e in main.get("env") or [])
    return _env_value(pod, ENV_TEMPLATE) == OFFLOADED or args_file


def unwrap_emissary(command: list[str], args: list[str]) -> list[str]:
    """`argoexec emissary [flags] -- CMD...` + args -> CMD... + args (an unwrapped command passes as is)."""
    argv = [*command, *args]
    if len(argv) >= 2 and argv[0].endswith("argoexec") and argv[1] == "emissary":
        if "--" not in argv:
            raise NotEmulatedError(f"emissary command without `--`: {argv!r}")
        return argv[argv.index("--") + 1:]
    return argv


def main_argv(pod: dict[str, Any], offloaded_args: list[str] | None, script_file: str | None) -> list[str]:
    """The original command of `main`: emissary unwrapped, offloaded args restored, the staged script path
    replaced by `script_file` (where the runner wrote the template's `script.source`)."""
    main = container(pod, MAIN) or {}
    args = list(main.get("args") or [])
    if offloaded_args is not None:
        args = offloaded_args
    argv = unwrap_emissary(list(main.get("command") or []), args)
    if not argv:
        raise NotEmulatedError(f"pod {pod['metadata']['name']}: `main` has no command (an image entrypoint cannot be "
                          "emulated: give the template an explicit command)")
    return [script_file if (a == SCRIPT_PATH and script_file) else a for a in argv]


def script_source(template: dict[str, Any]) -> str | None:
    script = template.get("script")
    return str(script.get("source", "")) if isinstance(script, dict) else None


class OutputError(Exception):
    """An output the wait container would fail to save (e.g. a missing file without a default)."""


def collect_outputs(template: dict[str, Any], read_file: Any, stdout: str | None) -> dict[str, Any]:
    """The `outputs` the wait container reports: parameters from `valueFrom.path` (one trailing newline
    trimmed, `default` when the file is missing) and `result` (stdout) when the controller asked for it.
    `read_file(path) -> str` raises OSError when the file is missing."""
    spec = template.get("outputs") or {}
    arts = [a for a in spec.get("artifacts") or [] if not a.get("optional")]
    if arts:
        names = ", ".join(str(a.get("name")) for a in arts)
        raise OutputError(f"output artifacts ({names}) are not supported by the pod runner (no artifact repository)")
    outputs: dict[str, Any] = {}
    params = []
    for param in spec.get("parameters") or []:
        out = dict(param)
        path = (param.get("valueFrom") or {}).get("path")
        if path:
            try:
                value = read_file(path)
            except OSError as exc:
                default = (param.get("valueFrom") or {}).get("default")
                if default is None:
                    raise OutputError(f"output parameter {param.get('name')}: cannot read {path}: "
                                      f"{exc.strerror or exc}") from None
                value = str(default)
            out["value"] = value[:-1] if value.endswith("\n") else value
        params.append(out)
    if params:
        outputs["parameters"] = params
    if stdout is not None:
        text = stdout[:-1] if stdout.endswith("\n") else stdout
        outputs["result"] = text[-MAX_RESULT:]
    return outputs


def task_result(ap: ArgoPod, outputs: dict[str, Any]) -> dict[str, Any]:
    """The WorkflowTaskResult the wait container writes at the end, already marked complete."""
    labels = {LABEL_WORKFLOW: ap.workflow, LABEL_COMPLETED: "true"}
    if ap.instance_id:
        labels[LABEL_INSTANCE_ID] = ap.instance_id
    meta: dict[str, Any] = {"name": ap.node_id, "namespace": ap.namespace, "labels": labels}
    if ap.workflow_uid:
        meta["ownerReferences"] = [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                                    "name": ap.workflow, "uid": ap.workflow_uid}]
    body: dict[str, Any] = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTaskResult", "metadata": meta}
    if outputs:
        body["outputs"] = outputs
    return body
