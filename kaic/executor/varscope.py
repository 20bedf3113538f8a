"""The variable scope: the workflow's global variables, what a template sees (``inputs.*``,
``pod.name`` ...), what a finished step or task adds for its siblings (``steps.X.outputs.result``
...), and the outputs of Skipped/Omitted producers (their ``valueFrom.default``, else an absent
optional, :data:`templating.ABSENT`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kaic.executor.expressions import to_text
from kaic.executor.manifest import Template, WorkflowModel
from kaic.executor.status import NodeStatus
from kaic.executor.templating import ABSENT, UnresolvedError, substitute

Scope = dict[str, str]
_COMPACT: dict[str, Any] = {"separators": (",", ":")}


class Globals:
    """The ``workflow.*`` variables of one run; exported outputs are added while it runs."""

    def __init__(self, model: WorkflowModel, name: str, uid: str, created: str) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        params = [{"name": k, "value": v} for k, v in model.parameters.items()]
        g: Scope = {
            "workflow.name": name,
            "workflow.namespace": model.namespace,
            "workflow.uid": uid,
            "workflow.creationTimestamp": created,
            "workflow.mainEntrypoint": model.entrypoint,
            "workflow.serviceAccountName": "default",
            "workflow.status": "Running",
            "workflow.parameters": json.dumps(params),
            "workflow.parameters.json": json.dumps(params, **_COMPACT),
            "workflow.labels.json": json.dumps(model.labels, **_COMPACT),
            "workflow.annotations.json": json.dumps(model.annotations, **_COMPACT),
        }
        for k, v in model.parameters.items():
            g[f"workflow.parameters.{k}"] = v
        for k, v in model.labels.items():
            g[f"workflow.labels.{k}"] = v
        for k, v in model.annotations.items():
            g[f"workflow.annotations.{k}"] = v
        self._values = g

    def snapshot(self) -> Scope:
        with self._lock:
            out = dict(self._values)
        out["workflow.duration"] = f"{time.monotonic() - self.started:.3f}"
        return out

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._values[key] = value

    def export(
        self,
        outputs: Mapping[str, Any],
        parameters: Sequence[Mapping[str, str]],
        artifacts: Sequence[Mapping[str, str]],
    ) -> None:
        """Publish the outputs that declare a ``globalName`` (``workflow.outputs.*``)."""
        values = {p["name"]: p["value"] for p in parameters}
        keys = {a["name"]: a["key"] for a in artifacts}
        with self._lock:
            for p in outputs.get("parameters") or []:
                if p.get("globalName") and p.get("name") in values:
                    self._values[f"workflow.outputs.parameters.{p['globalName']}"] = values[p["name"]]
            for a in outputs.get("artifacts") or []:
                if a.get("globalName") and a.get("name") in keys:
                    self._values[f"workflow.outputs.artifacts.{a['globalName']}"] = keys[a["name"]]

    def outputs(self) -> dict[str, list[dict[str, str]]]:
        """The exported ``workflow.outputs``, as Argo's status has them (for status.json)."""
        with self._lock:
            items = list(self._values.items())
        out: dict[str, list[dict[str, str]]] = {}
        for kind, field in (("parameters", "value"), ("artifacts", "key")):
            prefix = f"workflow.outputs.{kind}."
            found = [{"name": k[len(prefix) :], field: v} for k, v in items if k.startswith(prefix)]
            if found:
                out[kind] = found
        return out


def template_scope(
    globals_: Scope, inputs: Mapping[str, str], input_artifacts: Mapping[str, str], node: NodeStatus
) -> Scope:
    """What a template's fields are substituted with."""
    local = dict(globals_)
    for k, v in inputs.items():
        local[f"inputs.parameters.{k}"] = v
    local["inputs.parameters"] = json.dumps([{"name": k, "value": v} for k, v in inputs.items()])
    for k, key in input_artifacts.items():
        local[f"inputs.artifacts.{k}"] = key
    local["pod.name"] = node.id
    local["node.name"] = node.name
    return local


def resolve_inputs(tmpl: Template, args: Mapping[str, str], dropped: frozenset[str], scope: Mapping[str, str]) -> Scope:
    """A template's input parameters from the arguments, then ``value``/``default`` (Argo's
    ProcessArgs); an argument that referenced an absent optional counts as not given."""
    local = dict(scope)
    out: Scope = {}
    for p in tmpl.input_parameters:
        name = str(p["name"])
        if name in args:
            out[name] = args[name]
        elif "value" in p:
            out[name] = substitute(to_text(p["value"]), local)
        elif "default" in p:
            out[name] = substitute(to_text(p["default"]), local)
        elif name in dropped:
            raise UnresolvedError(
                f"inputs.parameters.{name}: argument references an absent optional "
                "(skipped/omitted node output with no default)"
            )
        else:
            raise UnresolvedError(f"inputs.parameters.{name} was not supplied")
        enum = p.get("enum")
        if enum and out[name] not in [to_text(e) for e in enum]:
            raise UnresolvedError(f"inputs.parameters.{name}: {out[name]!r} is not one of {enum}")
        local[f"inputs.parameters.{name}"] = out[name]
    return out


def node_vars(prefix: str, node: NodeStatus, children: Sequence[NodeStatus] | None = None) -> Scope:
    """The names a finished step/task adds to its siblings' scope (``steps.X.outputs.result`` ...);
    a fanned-out one gets Argo's aggregated JSON lists over its Succeeded children."""
    out = {
        f"{prefix}.id": node.id,
        f"{prefix}.status": node.phase,
        f"{prefix}.startedAt": node.started_at,
        f"{prefix}.finishedAt": node.finished_at,
    }
    if children is None:
        if node.exit_code is not None:
            out[f"{prefix}.exitCode"] = node.exit_code
        if node.result is not None:
            out[f"{prefix}.outputs.result"] = node.result
        for p in node.parameters:
            out[f"{prefix}.outputs.parameters.{p['name']}"] = p["value"]
        for a in node.artifacts:
            out[f"{prefix}.outputs.artifacts.{a['name']}"] = a["key"]
        return out
    ok = [c for c in children if c.phase == "Succeeded"]
    results: list[Any] = []
    params: list[dict[str, str]] = []
    by_name: dict[str, list[str]] = {}
    for c in ok:
        if c.result is not None:
            try:
                results.append(json.loads(c.result))
            except json.JSONDecodeError:
                results.append(c.result)
        if c.parameters:
            params.append({p["name"]: p["value"] for p in c.parameters})
            for p in c.parameters:
                by_name.setdefault(p["name"], []).append(p["value"])
    out[f"{prefix}.outputs.result"] = json.dumps(results, **_COMPACT)
    out[f"{prefix}.outputs.parameters"] = json.dumps(params, sort_keys=True, **_COMPACT)
    for name, values in by_name.items():
        out[f"{prefix}.outputs.parameters.{name}"] = json.dumps(values, **_COMPACT)
    return out


def skipped_vars(prefix: str, tmpl: Template | None, include_artifacts: bool) -> Scope:
    """A Skipped/Omitted producer's declared outputs (Argo's addSkippedNodeOutputsToScope): each
    output parameter is its ``valueFrom.default``, or an absent optional; steps also get empty
    placeholders for output artifacts."""
    out: Scope = {}
    if tmpl is None:
        return out
    outputs = tmpl.spec.get("outputs") or {}
    for p in outputs.get("parameters") or []:
        vf = p.get("valueFrom") or {}
        value = to_text(vf["default"]) if vf.get("default") is not None else ABSENT
        out[f"{prefix}.outputs.parameters.{p['name']}"] = value
    if include_artifacts:
        for a in outputs.get("artifacts") or []:
            out[f"{prefix}.outputs.artifacts.{a['name']}"] = ""
    return out
