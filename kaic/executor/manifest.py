"""Load an Argo manifest, check it against the allow-list, validate it, and build the model the
scheduler runs. Every problem raises :class:`kaic.errors.ConfigError` with one line naming the
source and the path (``workflow.yaml: spec.templates[diamond].dag.tasks[D].depends: unknown task 'E'``).
"""

from __future__ import annotations

import copy
import platform
import re
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaic.errors import ConfigError
from kaic.executor import allowlist
from kaic.executor.constexpr import is_constant
from kaic.executor.expressions import ExpressionError, Mode, depends_refs, evaluate_expr, parse, parse_depends
from kaic.executor.loops import LoopError, parse_duration
from kaic.executor.templating import TAG_RE, tags
from kaic.safeload import load_yaml_all, read_text

TEMPLATE_KINDS = ("container", "script", "containerSet", "steps", "dag", "suspend")
RETRY_POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")
ACCEPTED_KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate")


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


# The labels this machine would carry as a Kubernetes node; a template's nodeSelector is matched
# against them. Keys outside this table cannot be evaluated locally and are refused.
LOCAL_NODE_LABELS: dict[str, str] = {
    "kubernetes.io/arch": _arch(),
    "beta.kubernetes.io/arch": _arch(),
    "kubernetes.io/os": "linux" if sys.platform.startswith("linux") else sys.platform,
    "beta.kubernetes.io/os": "linux" if sys.platform.startswith("linux") else sys.platform,
    "kubernetes.io/hostname": socket.gethostname(),
}


@dataclass(frozen=True)
class Template:
    name: str
    kind: str  # one of TEMPLATE_KINDS
    spec: dict[str, Any]
    path: str  # "spec.templates[name]", for messages

    @property
    def is_pod(self) -> bool:
        return self.kind in ("container", "script", "containerSet")

    def body(self) -> dict[str, Any]:
        value = self.spec[self.kind]
        return value if isinstance(value, dict) else {"steps": value}

    @property
    def schedulable(self) -> bool:
        selector = self.spec.get("nodeSelector") or {}
        return all(LOCAL_NODE_LABELS.get(k) == str(v) for k, v in selector.items())

    @property
    def input_parameters(self) -> list[dict[str, Any]]:
        return list((self.spec.get("inputs") or {}).get("parameters") or [])


@dataclass(frozen=True)
class WorkflowModel:
    source: str
    manifest: dict[str, Any]  # the normalized Workflow manifest (what is saved for resume)
    name: str | None
    generate_name: str | None
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    entrypoint: str
    parameters: dict[str, str]  # spec.arguments.parameters after -p overrides
    templates: dict[str, Template]
    on_exit: str | None
    parallelism: int | None
    active_deadline_seconds: float | None
    warnings: list[str] = field(default_factory=list)


def load_file(path: Path) -> dict[str, Any]:
    return load_text(read_text(path, str(path)), str(path))


def load_text(text: str, source: str) -> dict[str, Any]:
    """One Workflow manifest, through kaic's bounded YAML loader (size, depth and alias limits)."""
    docs = [d for d in load_yaml_all(text, source) if d is not None]
    if len(docs) != 1:
        raise ConfigError(f"{source}: expected exactly one YAML document, found {len(docs)}")
    doc = docs[0]
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a Workflow manifest (a map), got {type(doc).__name__}")
    return doc


def _fail(source: str, problems: Sequence[str]) -> ConfigError:
    if len(problems) == 1:
        return ConfigError(f"{source}: {problems[0]}")
    return ConfigError(f"{source}: {len(problems)} problems: " + "; ".join(problems))


def to_workflow(
    doc: Mapping[str, Any], source: str, workflow_templates: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """A Workflow manifest from a Workflow, a WorkflowTemplate, or a Workflow with a
    ``workflowTemplateRef`` resolved against ``workflow_templates``."""
    kind = doc.get("kind")
    if kind not in ACCEPTED_KINDS:
        raise ConfigError(f"{source}: kind: {kind!r} is not one of {', '.join(ACCEPTED_KINDS)}")
    wf = copy.deepcopy(dict(doc))
    if kind != "Workflow":
        meta = wf.get("metadata") or {}
        name = meta.get("name") or (meta.get("generateName") or "workflow-").rstrip("-")
        wf = {
            "apiVersion": wf.get("apiVersion", "argoproj.io/v1alpha1"),
            "kind": "Workflow",
            "metadata": {
                k: v
                for k, v in {
                    "generateName": f"{name}-",
                    "namespace": meta.get("namespace"),
                    "labels": meta.get("labels"),
                    "annotations": meta.get("annotations"),
                }.items()
                if v
            },
            "spec": wf.get("spec") or {},
        }
    spec = wf.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("workflowTemplateRef"), dict):
        ref = spec["workflowTemplateRef"]
        wanted = ref.get("name")
        found = [
            t
            for t in workflow_templates
            if t.get("kind") in ("WorkflowTemplate", "ClusterWorkflowTemplate")
            and (t.get("metadata") or {}).get("name") == wanted
        ]
        if not found:
            raise ConfigError(
                f"{source}: spec.workflowTemplateRef.name: WorkflowTemplate {wanted!r} not given "
                "(pass its file with --template FILE)"
            )
        base = copy.deepcopy(found[0].get("spec") or {})
        for key, value in spec.items():
            if key == "workflowTemplateRef":
                continue
            if key == "arguments" and isinstance(value, dict):
                merged = {p.get("name"): p for p in (base.get("arguments") or {}).get("parameters") or []}
                for p in value.get("parameters") or []:
                    merged[p.get("name")] = {**merged.get(p.get("name"), {}), **p}
                base["arguments"] = {
                    **(base.get("arguments") or {}),
                    **value,
                    "parameters": list(merged.values()),
                }
            else:
                base[key] = value
        wf["spec"] = base
    return wf


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _params_by_name(params: Any) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in params or [] if isinstance(p, dict) and isinstance(p.get("name"), str)}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        import json

        return json.dumps(value)
    return str(value)


class _Validator:
    def __init__(self, wf: dict[str, Any], source: str) -> None:
        self.wf = wf
        self.source = source
        self.problems: list[str] = []
        self.templates: dict[str, Template] = {}

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def run(self) -> None:
        spec = self.wf.get("spec")
        if not isinstance(spec, dict):
            self.add("spec", "a Workflow needs a spec")
            return
        raw_templates = spec.get("templates")
        if not isinstance(raw_templates, list) or not raw_templates:
            self.add("spec.templates", "a Workflow needs at least one template")
            return
        for i, t in enumerate(raw_templates):
            if not isinstance(t, dict):
                continue
            name = t.get("name")
            path = f"spec.templates[{name}]" if isinstance(name, str) and name else f"spec.templates[{i}]"
            if not isinstance(name, str) or not name:
                self.add(path, "a template needs a name")
                continue
            if name in self.templates:
                self.add(path, f"duplicate template name {name!r}")
                continue
            kinds = [k for k in TEMPLATE_KINDS if t.get(k) is not None]
            if len(kinds) != 1:
                self.add(
                    path,
                    f"a template needs exactly one of {', '.join(TEMPLATE_KINDS)}"
                    + (f" (found {', '.join(kinds)})" if kinds else ""),
                )
                continue
            self.templates[name] = Template(name, kinds[0], t, path)
        entry = spec.get("entrypoint")
        if not isinstance(entry, str) or not entry:
            self.add("spec.entrypoint", "required")
        elif entry not in self.templates and "{{" not in entry:
            self.add("spec.entrypoint", f"unknown template {entry!r}")
        on_exit = spec.get("onExit")
        if on_exit is not None and on_exit not in self.templates:
            self.add("spec.onExit", f"unknown template {on_exit!r}")
        self.hooks(spec.get("hooks"), "spec.hooks", set(), "steps")
        self.retry_strategy(spec.get("retryStrategy"), "spec.retryStrategy")
        for key in ("parallelism", "activeDeadlineSeconds"):
            self._positive_int(spec.get(key), f"spec.{key}")
        for t in self.templates.values():
            self.template(t)

    def _positive_int(self, value: Any, path: str) -> None:
        if value is None or (isinstance(value, str) and "{{" in value):
            return
        try:
            if int(str(value)) < 0:
                raise ValueError
        except ValueError:
            self.add(path, f"{value!r} is not a non-negative integer")

    def _duration(self, value: Any, path: str) -> None:
        if value is None or (isinstance(value, str) and "{{" in value):
            return
        try:
            parse_duration(value)
        except LoopError as exc:
            self.add(path, str(exc))

    def template(self, t: Template) -> None:
        spec, path = t.spec, t.path
        declared = set(_params_by_name((spec.get("inputs") or {}).get("parameters")))
        declared_artifacts = {a.get("name") for a in (spec.get("inputs") or {}).get("artifacts") or []}
        for text in _strings(
            {k: v for k, v in spec.items() if k not in ("steps", "dag")}
            | {"body": spec.get("steps") or spec.get("dag")}
        ):
            for tag in tags(text):
                self._expression_tag(tag, path)
                m = re.fullmatch(r"inputs\.parameters\.([^ ]+)", tag)
                if m and m.group(1) not in declared:
                    self.add(path, f"{{{{{tag}}}}}: template has no input parameter {m.group(1)!r}")
                m = re.fullmatch(r"inputs\.artifacts\.([^ .]+)(\..*)?", tag)
                if m and m.group(1) not in declared_artifacts:
                    self.add(path, f"{{{{{tag}}}}}: template has no input artifact {m.group(1)!r}")
        for key in ("parallelism", "activeDeadlineSeconds"):
            self._positive_int(spec.get(key), f"{path}.{key}")
        self._duration(spec.get("timeout"), f"{path}.timeout")
        selector = spec.get("nodeSelector")
        if selector is not None:
            if not isinstance(selector, dict):
                self.add(f"{path}.nodeSelector", "expected a map")
            else:
                for key in selector:
                    if key not in LOCAL_NODE_LABELS:
                        self.add(
                            f"{path}.nodeSelector.{key}",
                            "cannot be evaluated locally (known: " + ", ".join(sorted(LOCAL_NODE_LABELS)) + ")",
                        )
        self.retry_strategy(spec.get("retryStrategy"), f"{path}.retryStrategy")
        self._body(t)

    def retry_strategy(self, retry: Any, path: str) -> None:
        if isinstance(retry, dict):
            policy = retry.get("retryPolicy")
            if policy is not None and policy not in RETRY_POLICIES:
                self.add(
                    f"{path}.retryPolicy",
                    f"{policy!r} is not one of {', '.join(RETRY_POLICIES)}",
                )
            self._positive_int(retry.get("limit"), f"{path}.limit")
            backoff = retry.get("backoff") or {}
            for key in ("duration", "maxDuration", "cap"):
                self._duration(backoff.get(key), f"{path}.backoff.{key}")
            expr = retry.get("expression")
            if isinstance(expr, str):
                self._syntax(expr, Mode.EXPR, f"{path}.expression")

    def _body(self, t: Template) -> None:
        spec, path = t.spec, t.path
        for i, p in enumerate((spec.get("outputs") or {}).get("parameters") or []):
            vf = p.get("valueFrom") or {}
            ppath = f"{path}.outputs.parameters[{p.get('name', i)}]"
            if "value" not in p and not any(k in vf for k in ("path", "parameter", "expression")):
                self.add(ppath, "needs value, valueFrom.path, valueFrom.parameter or valueFrom.expression")
            if "path" in vf and t.kind not in ("container", "script"):
                self.add(f"{ppath}.valueFrom.path", "only container and script templates have files")
            if isinstance(vf.get("expression"), str):
                self._syntax(vf["expression"], Mode.EXPR, f"{ppath}.valueFrom.expression")
        for group in ("inputs", "outputs"):
            for a in (spec.get(group) or {}).get("artifacts") or []:
                apath = f"{path}.{group}.artifacts[{a.get('name')}]"
                if not a.get("path") and t.is_pod:
                    self.add(f"{apath}.path", "required")
        if t.kind == "containerSet":
            for c in (spec.get("containerSet") or {}).get("containers") or []:
                cpath = f"{path}.containerSet.containers[{c.get('name')}]"
                if not c.get("command"):
                    self.add(f"{cpath}.command", "required locally (the image's entrypoint is unknown)")
            names = [c.get("name") for c in (spec.get("containerSet") or {}).get("containers") or []]
            if not names:
                self.add(f"{path}.containerSet.containers", "a containerSet needs at least one container")
            for c in (spec.get("containerSet") or {}).get("containers") or []:
                for d in c.get("dependencies") or []:
                    if d not in names:
                        where = f"{path}.containerSet.containers[{c.get('name')}].dependencies"
                        self.add(where, f"unknown container {d!r}")
        elif t.kind in ("container", "script"):
            body = spec[t.kind]
            if not body.get("command") and t.schedulable:
                self.add(f"{path}.{t.kind}.command", "required locally (the image's entrypoint is unknown)")
            if t.kind == "script" and not isinstance(body.get("source"), str):
                self.add(f"{path}.script.source", "required")
            for key in ("command", "args"):
                if body.get(key) is not None and not isinstance(body.get(key), list):
                    self.add(f"{path}.{t.kind}.{key}", "expected a list of strings")
            for e in body.get("env") or []:
                where = f"{path}.{t.kind}.env[{e.get('name')}]"
                refs = list((e.get("valueFrom") or {}).values())
                if "value" not in e and not refs:
                    self.add(where, "needs a plain value")
                elif any(not (isinstance(r, dict) and r.get("optional") is True) for r in refs):
                    self.add(
                        f"{where}.valueFrom",
                        "only optional Secret/ConfigMap references run locally (set optional: true; "
                        "the value then comes from this machine's environment)",
                    )
        elif t.kind == "suspend":
            duration = (spec.get("suspend") or {}).get("duration")
            if duration in (None, ""):
                self.add(
                    f"{path}.suspend",
                    "an indefinite suspend (no duration) cannot be resumed locally; give suspend.duration",
                )
            else:
                self._duration(duration, f"{path}.suspend.duration")
        elif t.kind == "steps":
            self.steps(t)
        elif t.kind == "dag":
            self.dag(t)

    def _expression_tag(self, tag: str, path: str) -> None:
        """``{{= expr}}``: it parses, and a constant one (no names) evaluates (``{{=1/0}}`` is refused)."""
        if not tag.startswith("="):
            return
        try:
            node = parse(tag[1:], Mode.EXPR)
            if is_constant(node):
                evaluate_expr(tag[1:], {})
        except ExpressionError as exc:
            self.add(path, f"{{{{{tag}}}}}: {exc}")
        except (ArithmeticError, TypeError, ValueError, RecursionError) as exc:  # e.g. 1/0
            self.add(path, f"{{{{{tag}}}}}: {type(exc).__name__}: {exc}")

    def _syntax(self, text: str, mode: Mode, path: str) -> None:
        probe = TAG_RE.sub("x" if mode is not Mode.EXPR else "true", text)
        try:
            parse(probe, mode)
        except ExpressionError as exc:
            self.add(path, str(exc))

    def call(self, item: dict[str, Any], path: str, local_names: set[str], prefix: str) -> None:
        """A step, task or hook that calls a template: the template exists, arguments are complete."""
        name = item.get("template")
        if not isinstance(name, str) or not name:
            self.add(f"{path}.template", "required")
            return
        target = self.templates.get(name)
        if target is None:
            self.add(f"{path}.template", f"unknown template {name!r}")
            return
        given = _params_by_name((item.get("arguments") or {}).get("parameters"))
        for pname, p in _params_by_name(target.input_parameters).items():
            if pname not in given and "value" not in p and "default" not in p:
                self.add(f"{path}.arguments", f"missing parameter {pname!r} required by template {name!r}")
        for pname, p in given.items():
            if "value" not in p:
                self.add(f"{path}.arguments.parameters[{pname}]", "needs a value")
        arts = {a.get("name") for a in (item.get("arguments") or {}).get("artifacts") or []}
        for a in (target.spec.get("inputs") or {}).get("artifacts") or []:
            if a.get("name") not in arts and not any(k in a for k in ("from", "s3", "raw")) and not a.get("optional"):
                self.add(f"{path}.arguments", f"missing artifact {a.get('name')!r} required by template {name!r}")
        for text in _strings({k: v for k, v in item.items() if k != "hooks"}):
            for tag in tags(text):
                self._expression_tag(tag, path)
                m = re.fullmatch(rf"{prefix}\.([^.]+)\..*", tag)
                if m and m.group(1) not in local_names:
                    self.add(path, f"{{{{{tag}}}}}: no {prefix[:-1]} named {m.group(1)!r}")
        loops = [k for k in ("withItems", "withParam", "withSequence") if item.get(k) is not None]
        if len(loops) > 1:
            self.add(path, f"only one of {', '.join(loops)} can be given")
        if item.get("withItems") is not None and not isinstance(item["withItems"], list):
            self.add(f"{path}.withItems", "expected a list")
        when = item.get("when")
        if isinstance(when, str):
            self._syntax(when, Mode.WHEN, f"{path}.when")
        self.hooks(item.get("hooks"), f"{path}.hooks", local_names, prefix)
        on_exit = item.get("onExit")
        if on_exit is not None and on_exit not in self.templates:
            self.add(f"{path}.onExit", f"unknown template {on_exit!r}")

    def hooks(self, hooks: Any, path: str, local_names: set[str], prefix: str) -> None:
        """``hooks.exit`` and expression hooks (any other name, which needs an ``expression``)."""
        if not isinstance(hooks, dict):
            return
        for name, hook in hooks.items():
            if not isinstance(hook, dict):
                self.add(f"{path}.{name}", "expected a map")
                continue
            hpath = f"{path}.{name}"
            self.call(hook, hpath, local_names, prefix)
            expr = hook.get("expression")
            if name != "exit" and not expr:
                self.add(f"{hpath}.expression", "required for a hook other than exit")
            if isinstance(expr, str) and expr:
                self._syntax(expr, Mode.EXPR, f"{hpath}.expression")

    def steps(self, t: Template) -> None:
        groups = t.spec["steps"]
        names: set[str] = set()
        for group in groups:
            for step in group or []:
                if isinstance(step, dict) and isinstance(step.get("name"), str):
                    names.add(step["name"])
        seen: set[str] = set()
        for gi, group in enumerate(groups):
            for si, step in enumerate(group or []):
                sname = step.get("name")
                spath = f"{t.path}.steps[{gi}][{sname or si}]"
                if not isinstance(sname, str) or not sname:
                    self.add(spath, "a step needs a name")
                    continue
                self.call(step, spath, names, "steps")
                seen.add(sname)

    def dag(self, t: Template) -> None:
        dag = t.spec["dag"]
        tasks = dag.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            self.add(f"{t.path}.dag.tasks", "a dag needs at least one task")
            return
        names: list[str] = []
        for i, task in enumerate(tasks):
            tname = task.get("name")
            if not isinstance(tname, str) or not tname:
                self.add(f"{t.path}.dag.tasks[{i}]", "a task needs a name")
            elif tname in names:
                self.add(f"{t.path}.dag.tasks[{tname}]", f"duplicate task name {tname!r}")
            else:
                names.append(tname)
        known = set(names)
        edges: dict[str, list[str]] = {n: [] for n in names}
        for task in tasks:
            tname = task.get("name")
            if not isinstance(tname, str) or tname not in edges:
                continue
            tpath = f"{t.path}.dag.tasks[{tname}]"
            self.call(task, tpath, known, "tasks")
            if task.get("depends") is not None and task.get("dependencies") is not None:
                self.add(tpath, "use either depends or dependencies, not both")
            if task.get("depends") is not None:
                try:
                    refs = depends_refs(parse_depends(str(task["depends"])))
                except ExpressionError as exc:
                    self.add(f"{tpath}.depends", str(exc))
                    refs = []
                for ref in refs:
                    if ref.task not in known:
                        self.add(f"{tpath}.depends", f"unknown task {ref.task!r}")
                    elif ref.selector == "Daemoned":
                        self.add(f"{tpath}.depends", f"'{ref.task}.Daemoned': daemons are unsupported")
                    elif ref.task not in edges[tname]:
                        edges[tname].append(ref.task)
            deps = task.get("dependencies")
            if deps is not None:
                if not isinstance(deps, list):
                    self.add(f"{tpath}.dependencies", "expected a list of task names")
                    deps = []
                for dep in deps:
                    if dep not in known:
                        self.add(f"{tpath}.dependencies", f"unknown task {dep!r}")
                    elif dep not in edges[tname]:
                        edges[tname].append(dep)
        cycle = find_cycle(edges)
        if cycle:
            self.add(f"{t.path}.dag.tasks", "dependency cycle: " + " -> ".join(cycle))
        target = dag.get("target")
        if isinstance(target, str) and "{{" not in target:
            for name in split_targets(target):
                if name not in known:
                    self.add(f"{t.path}.dag.target", f"unknown task {name!r}")


def split_targets(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,]+", text.strip()) if p]


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path ``[a, b, a]``, or None. ``edges[x]`` lists what x depends on."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in edges.get(node, ()):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def resolve_parameters(spec: Mapping[str, Any], overrides: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``spec.arguments.parameters`` with ``-p`` overrides applied; problems as path messages."""
    problems: list[str] = []
    declared = list((spec.get("arguments") or {}).get("parameters") or [])
    names = [p.get("name") for p in declared]
    out: dict[str, str] = {}
    for name in overrides:
        if name not in names:
            problems.append(
                f"-p {name}: the workflow has no parameter {name!r}"
                + (f" (declared: {', '.join(str(n) for n in names)})" if names else "")
            )
    for p in declared:
        name = p.get("name")
        if name in overrides:
            value: str | None = overrides[name]
        elif "value" in p:
            value = _scalar(p["value"])
        elif "default" in p:
            value = _scalar(p["default"])
        else:
            problems.append(f"spec.arguments.parameters[{name}]: no value; pass -p {name}=VALUE")
            continue
        enum = p.get("enum")
        if enum and value not in [_scalar(e) for e in enum]:
            problems.append(
                f"spec.arguments.parameters[{name}]: {value!r} is not one of " + ", ".join(_scalar(e) for e in enum)
            )
        out[str(name)] = str(value)
    return out, problems


def prepare(
    doc: Mapping[str, Any],
    overrides: Mapping[str, str],
    source: str,
    workflow_templates: Iterable[Mapping[str, Any]] = (),
) -> WorkflowModel:
    """Normalize, allow-list check and validate a manifest; raise ConfigError on any problem."""
    wf = to_workflow(doc, source, workflow_templates)
    problems: list[str] = []
    allowlist.check(wf, "Workflow", "", problems)
    if problems:
        raise _fail(source, problems)
    validator = _Validator(wf, source)
    validator.run()
    spec = wf["spec"]
    parameters, param_problems = resolve_parameters(spec, overrides)
    problems = validator.problems + param_problems
    entry = spec.get("entrypoint")
    if not problems and isinstance(entry, str) and entry in validator.templates:
        for pname, p in _params_by_name(validator.templates[entry].input_parameters).items():
            if pname not in parameters and "value" not in p and "default" not in p:
                problems.append(
                    f"spec.templates[{entry}].inputs.parameters[{pname}]: entrypoint input "
                    f"has no value; add it to spec.arguments.parameters"
                )
    if problems:
        raise _fail(source, problems)
    meta = wf.get("metadata") or {}
    name, generate = meta.get("name"), meta.get("generateName")
    if not name and not generate:
        raise ConfigError(f"{source}: metadata: needs name or generateName")
    deadline = spec.get("activeDeadlineSeconds")
    return WorkflowModel(
        source=source,
        manifest=wf,
        name=str(name) if name else None,
        generate_name=str(generate) if generate else None,
        namespace=str(meta.get("namespace") or "default"),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
        entrypoint=str(entry),
        parameters=parameters,
        templates=validator.templates,
        on_exit=spec.get("onExit"),
        parallelism=int(spec["parallelism"]) if spec.get("parallelism") is not None else None,
        active_deadline_seconds=float(deadline) if deadline is not None else None,
    )
