"""The engine: walks templates, creates nodes, runs pods with parallelism limits, retries,
deadlines, hooks and the exit handler.

Each template invocation runs in the thread that asked for it; parallel children (a step group,
a fan-out, ready DAG tasks) each get a thread, and leaf pods block in ``waitpid``. The pure
decisions live in :mod:`dagplan`, :mod:`expressions`, :mod:`templating` and :mod:`loops`.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaic.executor import dagplan
from kaic.executor.artifacts import ArtifactError, fetch_input, save_output
from kaic.executor.expressions import ExpressionError, evaluate_expr, evaluate_when, to_text
from kaic.executor.loops import (
    LoopError,
    expand_sequence,
    item_label,
    item_scope,
    parse_duration,
    parse_param_items,
)
from kaic.executor.manifest import Template, WorkflowModel, split_targets
from kaic.executor.process import (
    CancelScope,
    PathMap,
    Slots,
    Timer,
    make_dirs,
    python_argv,
    read_text,
    run_process,
)
from kaic.executor.status import NodeStatus, StatusBook, node_id, now_iso
from kaic.executor.templating import UnresolvedError, nested, substitute, substitute_any

POD_DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
WORKFLOW_DEADLINE_MESSAGE = "Step exceeded its deadline"
FAIL_FAST_SETTLE_S = 1.0
NO_ITEM = object()


@dataclass
class EngineConfig:
    run_dir: Path
    store_dir: Path
    max_parallel: int
    extra_env: dict[str, str] = field(default_factory=dict)
    base_env: dict[str, str] = field(default_factory=dict)


def node_vars(prefix: str, node: NodeStatus, children: list[NodeStatus] | None = None) -> dict[str, str]:
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
    compact = {"separators": (",", ":")}
    out[f"{prefix}.outputs.result"] = json.dumps(results, **compact)  # type: ignore[arg-type]
    out[f"{prefix}.outputs.parameters"] = json.dumps(params, sort_keys=True, **compact)  # type: ignore[arg-type]
    for name, values in by_name.items():
        out[f"{prefix}.outputs.parameters.{name}"] = json.dumps(values, **compact)  # type: ignore[arg-type]
    return out


@dataclass
class Call:
    """One expanded step or task: what to run and under which node name."""

    spec: dict[str, Any]
    name: str
    display: str
    item: Any = NO_ITEM


class Engine:
    def __init__(
        self,
        model: WorkflowModel,
        name: str,
        uid: str,
        book: StatusBook,
        config: EngineConfig,
        previous: Mapping[str, NodeStatus] | None = None,
    ) -> None:
        self.model = model
        self.name = name
        self.uid = uid
        self.book = book
        self.config = config
        self.previous = dict(previous or {})
        self.timer = Timer()
        self.main_scope = CancelScope()
        self.main_scope.timer = self.timer
        self.exit_scope: CancelScope | None = None
        limit = config.max_parallel if model.parallelism is None else min(config.max_parallel, model.parallelism)
        self.pods = Slots(limit)
        self.main_scope.watch(self.pods)
        self.started = time.monotonic()
        self.deadline_exceeded = False
        self._globals_lock = threading.Lock()
        self.globals = self._initial_globals()
        self.env = dict(config.base_env)
        bin_dir = str(config.run_dir / "bin")
        self.env["PATH"] = bin_dir + os.pathsep + self.env.get("PATH", os.defpath)
        self.env.update(config.extra_env)

    def _initial_globals(self) -> dict[str, str]:
        m = self.model
        g = {
            "workflow.name": self.name,
            "workflow.namespace": m.namespace,
            "workflow.uid": self.uid,
            "workflow.creationTimestamp": self.book.started_at,
            "workflow.mainEntrypoint": m.entrypoint,
            "workflow.serviceAccountName": "default",
            "workflow.parameters": json.dumps([{"name": k, "value": v} for k, v in m.parameters.items()]),
        }
        for k, v in m.parameters.items():
            g[f"workflow.parameters.{k}"] = v
        for k, v in m.labels.items():
            g[f"workflow.labels.{k}"] = v
        for k, v in m.annotations.items():
            g[f"workflow.annotations.{k}"] = v
        return g

    # ------------------------------------------------------------------------------------ workflow

    def run(self) -> tuple[str, str]:
        """Run the entrypoint and the exit handler; the workflow's (phase, message)."""
        m = self.model
        deadline = None
        if m.active_deadline_seconds is not None:

            def expire() -> None:
                self.deadline_exceeded = True
                self.main_scope.cancel(WORKFLOW_DEADLINE_MESSAGE)

            deadline = self.timer.schedule(m.active_deadline_seconds, expire)
        try:
            root = self.invoke(
                m.templates[m.entrypoint], dict(m.parameters), [], self.name, self.name, None, self.main_scope
            )
            if deadline is not None:
                self.timer.cancel(deadline)
            phase = root.phase if root.phase in ("Succeeded", "Failed", "Error") else "Failed"
            message = root.message if phase != "Succeeded" else ""
            if self.main_scope.cancelled:
                phase = "Failed"
                message = "Workflow exceeded its deadline" if self.deadline_exceeded else self.main_scope.reason
            if m.on_exit:
                self.exit_scope = CancelScope()
                self.exit_scope.timer = self.timer
                self.exit_scope.watch(self.pods)
                with self._globals_lock:
                    self.globals["workflow.status"] = phase
                    self.globals["workflow.failures"] = json.dumps(self.book.failures(), separators=(",", ":"))
                handler = self.invoke(
                    m.templates[m.on_exit], {}, [], f"{self.name}.onExit", "onExit", None, self.exit_scope
                )
                if handler.phase in ("Failed", "Error") and phase == "Succeeded":
                    phase, message = handler.phase, f"exit handler {handler.phase.lower()}: {handler.message}"
            return phase, message
        finally:
            self.timer.stop()

    def interrupt(self, reason: str = "interrupted") -> None:
        """Stop running nodes (SIGTERM their process groups); a second call also stops the exit handler."""
        if self.main_scope.cancelled and self.exit_scope is not None:
            self.exit_scope.cancel(reason)
        self.main_scope.cancel(reason)

    # ------------------------------------------------------------------------------------ nodes

    def new_node(
        self,
        name: str,
        display: str,
        kind: str,
        template: str,
        parent: NodeStatus | None,
        phase: str = "Pending",
        message: str = "",
    ) -> NodeStatus:
        node = NodeStatus(
            id=node_id(self.name, name),
            name=name,
            display_name=display,
            type=kind,
            template_name=template,
            phase=phase,
            message=message,
        )
        if phase != "Pending":
            node.started_at = node.finished_at = now_iso()
        return self.book.add(node, parent)

    def finish(self, node: NodeStatus, phase: str, message: str = "") -> NodeStatus:
        self.book.set_phase(node, phase, message)
        return node

    def scope_for(self, inputs: Mapping[str, str], node: NodeStatus) -> dict[str, str]:
        with self._globals_lock:
            local = dict(self.globals)
        local["workflow.duration"] = f"{time.monotonic() - self.started:.3f}"
        for k, v in inputs.items():
            local[f"inputs.parameters.{k}"] = v
        local["inputs.parameters"] = json.dumps([{"name": k, "value": v} for k, v in inputs.items()])
        local["pod.name"] = node.id
        local["node.name"] = node.name
        return local

    def resolve_inputs(self, tmpl: Template, args: Mapping[str, str]) -> dict[str, str]:
        with self._globals_lock:
            scope = dict(self.globals)
        out: dict[str, str] = {}
        for p in tmpl.input_parameters:
            name = str(p["name"])
            if name in args:
                out[name] = args[name]
            elif "value" in p:
                out[name] = substitute(to_text(p["value"]), scope)
            elif "default" in p:
                out[name] = substitute(to_text(p["default"]), scope)
            else:
                raise UnresolvedError(f"inputs.parameters.{name} was not supplied")
            enum = p.get("enum")
            if enum and out[name] not in [to_text(e) for e in enum]:
                raise UnresolvedError(f"inputs.parameters.{name}: {out[name]!r} is not one of {enum}")
            scope[f"inputs.parameters.{name}"] = out[name]
        return out

    def invoke(
        self,
        tmpl: Template,
        args: Mapping[str, str],
        arts: list[dict[str, Any]],
        name: str,
        display: str,
        parent: NodeStatus | None,
        scope: CancelScope,
    ) -> NodeStatus:
        """Run one template under node ``name`` (with its retries); its node once finished."""
        prev = self.previous.get(name)
        if prev is not None and prev.phase == "Succeeded" and tmpl.kind in ("container", "script", "suspend"):
            return self.reuse(prev, parent)
        try:
            inputs = self.resolve_inputs(tmpl, args)
        except UnresolvedError as exc:
            node = self.new_node(name, display, "Pod", tmpl.name, parent)
            return self.finish(node, "Error", str(exc))
        if tmpl.spec.get("retryStrategy"):
            return self.run_retries(tmpl, inputs, arts, name, display, parent, scope)
        return self.run_once(tmpl, inputs, arts, name, display, parent, scope, None)

    def reuse(self, prev: NodeStatus, parent: NodeStatus | None) -> NodeStatus:
        node = NodeStatus(
            id=prev.id,
            name=prev.name,
            display_name=prev.display_name,
            type=prev.type,
            template_name=prev.template_name,
            phase="Succeeded",
            message="reused from the previous run",
            started_at=prev.started_at,
            finished_at=prev.finished_at,
            parameters=prev.parameters,
            result=prev.result,
            exit_code=prev.exit_code,
            artifacts=prev.artifacts,
        )
        return self.book.add(node, parent)

    def run_once(
        self,
        tmpl: Template,
        inputs: dict[str, str],
        arts: list[dict[str, Any]],
        name: str,
        display: str,
        parent: NodeStatus | None,
        scope: CancelScope,
        retry: int | None,
    ) -> NodeStatus:
        kind = {"container": "Pod", "script": "Pod", "steps": "Steps", "dag": "DAG", "suspend": "Suspend"}[tmpl.kind]
        node = self.new_node(name, display, kind, tmpl.name, parent)
        node.inputs = [{"name": k, "value": v} for k, v in inputs.items()]
        local = self.scope_for(inputs, node)
        if retry is not None:
            local["retries"] = str(retry)
        if scope.cancelled:
            return self.finish(node, "Failed", scope.reason)
        try:
            if tmpl.kind in ("container", "script"):
                self.run_pod(tmpl, node, local, arts, scope)
            elif tmpl.kind == "suspend":
                self.run_suspend(tmpl, node, local, scope)
            elif tmpl.kind == "steps":
                self.run_steps(tmpl, node, local, scope)
            else:
                self.run_dag(tmpl, node, local, scope)
        except (UnresolvedError, ExpressionError, LoopError, ArtifactError) as exc:
            self.finish(node, "Error", str(exc))
        return node

    # ------------------------------------------------------------------------------------ retries

    def run_retries(
        self,
        tmpl: Template,
        inputs: dict[str, str],
        arts: list[dict[str, Any]],
        name: str,
        display: str,
        parent: NodeStatus | None,
        scope: CancelScope,
    ) -> NodeStatus:
        rnode = self.new_node(name, display, "Retry", tmpl.name, parent)
        self.book.set_phase(rnode, "Running")
        strategy = tmpl.spec["retryStrategy"]
        local = self.scope_for(inputs, rnode)
        try:
            limit_text = strategy.get("limit")
            limit = int(substitute(to_text(limit_text), local)) if limit_text is not None else None
            policy = strategy.get("retryPolicy") or "OnFailure"
            backoff = strategy.get("backoff") or {}
            base = parse_duration(substitute(to_text(backoff["duration"]), local)) if backoff.get("duration") else 0.0
            factor = float(substitute(to_text(backoff.get("factor", 2 if base else 1)), local))
            cap = parse_duration(substitute(to_text(backoff["cap"]), local)) if backoff.get("cap") else None
            max_total = (
                parse_duration(substitute(to_text(backoff["maxDuration"]), local))
                if backoff.get("maxDuration")
                else None
            )
        except (ValueError, UnresolvedError) as exc:
            return self.finish(rnode, "Error", f"retryStrategy: {exc}")
        first = time.monotonic()
        attempt = 0
        while True:
            child = self.run_once(
                tmpl, inputs, arts, f"{name}({attempt})", f"{display}({attempt})", rnode, scope, attempt
            )
            message = child.message
            if child.phase == "Succeeded" or scope.cancelled:
                break
            if limit is not None and attempt >= limit:
                message = f"No more retries left ({child.message})" if child.message else "No more retries left"
                break
            if not _policy_allows(policy, child.phase):
                break
            if strategy.get("expression") and not self._retry_expression(strategy["expression"], local, child):
                break
            delay = base * (factor**attempt) if base else 0.0
            if cap is not None:
                delay = min(delay, cap)
            if max_total is not None and time.monotonic() - first + delay > max_total:
                message = "Max duration limit exceeded"
                break
            if delay > 0 and scope.event.wait(delay):
                break
            attempt += 1
        rnode.parameters, rnode.result, rnode.exit_code = child.parameters, child.result, child.exit_code
        rnode.artifacts = child.artifacts
        return self.finish(rnode, child.phase, message if child.phase != "Succeeded" else "")

    def _retry_expression(self, text: str, local: Mapping[str, str], child: NodeStatus) -> bool:
        duration = max(0.0, child.finished_mono - child.started_mono)
        context = nested(local)
        context["lastRetry"] = {
            "exitCode": child.exit_code if child.exit_code is not None else "-1",
            "status": child.phase,
            "duration": str(int(duration)),
            "message": child.message,
        }
        try:
            return bool(evaluate_expr(substitute(text, local), context) is True)
        except (ExpressionError, UnresolvedError) as exc:
            child.message = f"{child.message}; retry expression: {exc}".lstrip("; ")
            return False

    # ------------------------------------------------------------------------------------ leaves

    def run_suspend(self, tmpl: Template, node: NodeStatus, local: Mapping[str, str], scope: CancelScope) -> None:
        seconds = parse_duration(substitute(to_text(tmpl.spec["suspend"]["duration"]), local))
        self.book.set_phase(node, "Running")
        if scope.event.wait(seconds):
            self.finish(node, "Failed", scope.reason)
        else:
            self.finish(node, "Succeeded")

    def run_pod(
        self,
        tmpl: Template,
        node: NodeStatus,
        local: dict[str, str],
        arts: list[dict[str, Any]],
        scope: CancelScope,
    ) -> None:
        body = tmpl.spec[tmpl.kind]
        spec = substitute_any({k: body.get(k) for k in ("command", "args", "env", "source", "workingDir")}, local)
        outputs = tmpl.spec.get("outputs") or {}
        inputs_spec = tmpl.spec.get("inputs") or {}
        declared = [
            str(p["valueFrom"]["path"])
            for p in outputs.get("parameters") or []
            if (p.get("valueFrom") or {}).get("path")
        ]
        declared += [
            str(a["path"])
            for a in (outputs.get("artifacts") or []) + (inputs_spec.get("artifacts") or [])
            if a.get("path")
        ]
        if spec.get("workingDir"):
            declared.append(str(spec["workingDir"]))
        node_dir = self.config.run_dir / "nodes" / node.id
        paths = PathMap(node_dir, tuple(substitute(p, local) for p in declared))
        deadline, deadline_message = self._pod_deadline(tmpl, local)

        if not tmpl.schedulable:
            selector = tmpl.spec.get("nodeSelector")
            if self.model.active_deadline_seconds is None:
                self.finish(node, "Error", f"unschedulable: nodeSelector {selector} does not match this machine")
            else:  # Argo leaves such a pod Pending until a deadline ends the workflow
                scope.event.wait()
                self.finish(node, "Failed", scope.reason)
            return
        if not self.pods.acquire(scope):
            self.finish(node, "Failed", scope.reason)
            return
        try:
            make_dirs((node_dir, paths.tmp, *(paths.local(p).parent for p in paths.declared)))
            argv = [paths.rewrite(str(a)) for a in spec.get("command") or []]
            if tmpl.kind == "script":
                script = node_dir / "script"
                script.write_text(paths.rewrite(str(spec.get("source") or "")), encoding="utf-8")
                script.chmod(0o755)
                argv.append(str(script))
            argv += [paths.rewrite(str(a)) for a in spec.get("args") or []]
            argv = python_argv(argv)
            env = dict(self.env)
            env["TMPDIR"] = str(paths.tmp)
            for e in spec.get("env") or []:
                if "value" in e:  # optional Secret/ConfigMap refs keep this machine's value (if any)
                    env[str(e["name"])] = paths.rewrite(to_text(e["value"]))
            cwd = paths.local(str(spec["workingDir"])) if spec.get("workingDir") else node_dir
            if spec.get("workingDir"):
                cwd.mkdir(parents=True, exist_ok=True)
            self._fetch_inputs(inputs_spec, arts, local, paths)
            outcome = run_process(
                argv,
                env=env,
                cwd=cwd,
                stdout=node_dir / "stdout.log",
                stderr=node_dir / "stderr.log",
                scope=scope,
                timer=self.timer,
                deadline_s=deadline,
                deadline_message=deadline_message,
                on_start=lambda: self.book.set_phase(node, "Running"),
            )
        finally:
            self.pods.release()
        if outcome.exit_code is None:
            self.finish(node, "Error", outcome.start_error or "failed to start")
            return
        code = outcome.exit_code if outcome.exit_code >= 0 else 128 - outcome.exit_code
        node.exit_code = str(code)
        node.result = read_text(node_dir / "stdout.log").strip()
        if outcome.killed:
            self.finish(node, "Failed", outcome.killed)
            return
        if code != 0:
            self._collect_outputs(tmpl, node, local, paths, strict=False)
            self.finish(node, "Failed", f"Error (exit code {code})")
            return
        error = self._collect_outputs(tmpl, node, local, paths, strict=True)
        self.finish(node, "Error" if error else "Succeeded", error or "")

    def _pod_deadline(self, tmpl: Template, local: Mapping[str, str]) -> tuple[float | None, str]:
        deadlines: list[float] = []
        for key in ("activeDeadlineSeconds", "timeout"):
            value = tmpl.spec.get(key)
            if value is not None:
                deadlines.append(parse_duration(substitute(to_text(value), local)))
        return (min(deadlines) if deadlines else None), POD_DEADLINE_MESSAGE

    def _fetch_inputs(
        self,
        inputs_spec: Mapping[str, Any],
        arts: list[dict[str, Any]],
        local: Mapping[str, str],
        paths: PathMap,
    ) -> None:
        given = {a.get("name"): a for a in arts}
        for spec in inputs_spec.get("artifacts") or []:
            merged = {**spec, **given.get(spec.get("name"), {})}
            merged = substitute_any(merged, local)
            fetch_input(self.config.store_dir, merged, paths.local(str(spec["path"])))

    def _collect_outputs(
        self, tmpl: Template, node: NodeStatus, local: dict[str, str], paths: PathMap, strict: bool
    ) -> str | None:
        outputs = tmpl.spec.get("outputs") or {}
        scope = dict(local)
        if node.result is not None:
            scope["outputs.result"] = node.result
        if node.exit_code is not None:
            scope["exitCode"] = node.exit_code
        for p in outputs.get("parameters") or []:
            name = str(p["name"])
            vf = p.get("valueFrom") or {}
            try:
                if vf.get("path"):
                    local_path = paths.local(substitute(str(vf["path"]), local))
                    try:
                        value = read_text(local_path).strip()
                    except OSError:
                        if "default" not in vf:
                            raise UnresolvedError(f"output parameter {name!r}: {vf['path']} was not written") from None
                        value = substitute(to_text(vf["default"]), local)
                else:
                    value = self._output_value(p, scope)
            except (UnresolvedError, ExpressionError) as exc:
                if strict:
                    return str(exc)
                continue
            node.parameters.append({"name": name, "value": value})
            self._export_global(p, value)
        if strict:
            for a in outputs.get("artifacts") or []:
                a = substitute_any(a, local)
                try:
                    record = save_output(
                        self.config.store_dir, a, paths.local(str(a["path"])), f"{node.id}/{a['name']}"
                    )
                except (ArtifactError, OSError) as exc:
                    return str(exc)
                if record is not None:
                    node.artifacts.append(record)
        return None

    def _output_value(self, p: Mapping[str, Any], scope: Mapping[str, str]) -> str:
        vf = p.get("valueFrom") or {}
        try:
            if "value" in p:
                return substitute(to_text(p["value"]), scope)
            if vf.get("parameter") is not None:
                return substitute(to_text(vf["parameter"]), scope)
            if vf.get("expression") is not None:
                return to_text(evaluate_expr(substitute(str(vf["expression"]), scope), nested(scope)))
        except (UnresolvedError, ExpressionError):
            if "default" in vf:
                return substitute(to_text(vf["default"]), scope)
            raise
        raise UnresolvedError(f"output parameter {p.get('name')!r} has no source")

    def _export_global(self, p: Mapping[str, Any], value: str) -> None:
        if p.get("globalName"):
            with self._globals_lock:
                self.globals[f"workflow.outputs.parameters.{p['globalName']}"] = value

    def _template_outputs(self, tmpl: Template, node: NodeStatus, local: Mapping[str, str]) -> str | None:
        for p in (tmpl.spec.get("outputs") or {}).get("parameters") or []:
            try:
                value = self._output_value(p, local)
            except (UnresolvedError, ExpressionError) as exc:
                return f"output parameter {p.get('name')!r}: {exc}"
            node.parameters.append({"name": str(p["name"]), "value": value})
            self._export_global(p, value)
        return None

    # ------------------------------------------------------------------------------------ calls

    def expand(self, spec: Mapping[str, Any], local: Mapping[str, str]) -> list[Any] | None:
        if spec.get("withItems") is not None:
            return [substitute_any(i, local) for i in spec["withItems"]]
        if spec.get("withParam") is not None:
            return parse_param_items(substitute(to_text(spec["withParam"]), local))
        seq = spec.get("withSequence")
        if seq is not None:
            sub = {k: substitute(to_text(v), local) for k, v in seq.items()}
            return expand_sequence(sub.get("count"), sub.get("start"), sub.get("end"), sub.get("format"))
        return None

    def calls_for(self, spec: dict[str, Any], base: str, display: str, local: Mapping[str, str]) -> list[Call]:
        items = self.expand(spec, local)
        if items is None:
            return [Call(spec, base, display)]
        return [
            Call(spec, f"{base}({i}:{item_label(item)})", f"{display}({i}:{item_label(item)})", item)
            for i, item in enumerate(items)
        ]

    def run_call(
        self, call: Call, parent: NodeStatus, local: Mapping[str, str], scope: CancelScope, prefix: str
    ) -> NodeStatus:
        """One step or task: ``when``, arguments, the template, then its exit hook."""
        spec = call.spec
        sc = dict(local)
        if call.item is not NO_ITEM:
            sc.update(item_scope(call.item))
        tname = str(spec["template"])
        try:
            when = spec.get("when")
            if when is not None:
                text = substitute(to_text(when), sc)
                if not evaluate_when(text):
                    return self.new_node(
                        call.name,
                        call.display,
                        "Skipped",
                        tname,
                        parent,
                        "Skipped",
                        f"when '{text}' evaluated false",
                    )
            args = {
                str(p["name"]): substitute(to_text(p.get("value", "")), sc)
                for p in (spec.get("arguments") or {}).get("parameters") or []
            }
            arts = [substitute_any(a, sc) for a in (spec.get("arguments") or {}).get("artifacts") or []]
        except (UnresolvedError, ExpressionError) as exc:
            node = self.new_node(call.name, call.display, "Skipped", tname, parent)
            return self.finish(node, "Error", str(exc))
        child = self.invoke(self.model.templates[tname], args, arts, call.name, call.display, parent, scope)
        self.run_hook(spec, child, parent, sc, f"{prefix}.{spec['name']}")
        return child

    def run_hook(
        self,
        spec: Mapping[str, Any],
        child: NodeStatus,
        parent: NodeStatus,
        sc: Mapping[str, str],
        prefix: str,
    ) -> None:
        hook = ((spec.get("hooks") or {}).get("exit")) or ({"template": spec["onExit"]} if spec.get("onExit") else None)
        if not hook:
            return
        hsc = dict(sc)
        hsc.update(node_vars(prefix, child))
        name, display = f"{child.name}.onExit", f"{child.display_name}.onExit"
        try:
            args = {
                str(p["name"]): substitute(to_text(p.get("value", "")), hsc)
                for p in (hook.get("arguments") or {}).get("parameters") or []
            }
        except UnresolvedError as exc:
            node = self.new_node(name, display, "Pod", str(hook["template"]), parent)
            self.finish(node, "Error", str(exc))
            return
        scope = CancelScope()  # hooks run even when the step failed; an interrupt still stops them
        scope.timer = self.timer
        if self.main_scope.cancelled:
            scope.cancel(self.main_scope.reason)
        self.invoke(self.model.templates[str(hook["template"])], args, [], name, display, parent, scope)

    # ------------------------------------------------------------------------------------ steps

    def run_steps(self, tmpl: Template, node: NodeStatus, local: dict[str, str], scope: CancelScope) -> None:
        self.book.set_phase(node, "Running")
        limit = self._template_slots(tmpl, local, scope)
        fail_fast = tmpl.spec.get("failFast") is True
        for gi, group in enumerate(tmpl.spec["steps"]):
            if scope.cancelled:
                self.finish(node, "Failed", scope.reason)
                return
            gnode = self.new_node(f"{node.name}[{gi}]", f"[{gi}]", "StepGroup", tmpl.name, node)
            self.book.set_phase(gnode, "Running")
            failure = self.run_group(tmpl, group or [], gnode, local, scope, limit, fail_fast)
            if failure:
                self.finish(gnode, "Failed", failure)
                self.finish(node, "Failed", failure)
                return
            self.finish(gnode, "Succeeded")
        error = self._template_outputs(tmpl, node, local)
        self.finish(node, "Error" if error else "Succeeded", error or "")

    def _template_slots(self, tmpl: Template, local: Mapping[str, str], scope: CancelScope) -> Slots | None:
        value = tmpl.spec.get("parallelism")
        if value is None:
            return None
        slots = Slots(int(substitute(to_text(value), local)))
        scope.watch(slots)
        return slots

    def run_group(
        self,
        tmpl: Template,
        group: list[dict[str, Any]],
        gnode: NodeStatus,
        local: dict[str, str],
        scope: CancelScope,
        limit: Slots | None,
        fail_fast: bool,
    ) -> str:
        """Run one group of parallel steps; the failure message, or "" when the group succeeded."""
        planned: list[tuple[dict[str, Any], list[Call] | NodeStatus]] = []
        for step in group:
            sname = str(step["name"])
            try:
                calls = self.calls_for(step, f"{gnode.name}.{sname}", sname, local)
            except (UnresolvedError, LoopError) as exc:
                bad = self.new_node(f"{gnode.name}.{sname}", sname, "Skipped", str(step["template"]), gnode)
                planned.append((step, self.finish(bad, "Error", str(exc))))
                continue
            planned.append((step, calls))
        results: dict[int, NodeStatus] = {}
        lock = threading.Lock()
        stop = threading.Event()
        threads: list[threading.Thread] = []
        order: list[tuple[int, dict[str, Any]]] = []

        def work(index: int, call: Call) -> None:
            try:
                child = self.run_call(call, gnode, local, scope, "steps")
                with lock:
                    results[index] = child
                if child.failed_or_error and not dagplan.ContinueOn.of(call.spec.get("continueOn")).covers(child.phase):
                    stop.set()
            finally:
                if limit is not None:
                    limit.release()

        stopped_early = False
        index = 0
        for step, plan in planned:
            if isinstance(plan, NodeStatus):
                continue
            if not plan:
                self.new_node(
                    f"{gnode.name}.{step['name']}",
                    str(step["name"]),
                    "Skipped",
                    str(step["template"]),
                    gnode,
                    "Skipped",
                    "no items to iterate over",
                )
            for call in plan:
                if limit is not None and not limit.acquire(scope):
                    break
                if (fail_fast and stop.is_set()) or scope.cancelled:
                    if limit is not None:
                        limit.release()
                    stopped_early = True
                    break
                order.append((index, step))
                t = threading.Thread(target=work, args=(index, call), daemon=True)
                t.start()
                threads.append(t)
                index += 1
        for t in threads:
            t.join()
        by_step: dict[str, list[NodeStatus]] = {}
        failure = ""
        for i, step in order:
            child = results[i]
            by_step.setdefault(str(step["name"]), []).append(child)
            if child.failed_or_error and not dagplan.ContinueOn.of(step.get("continueOn")).covers(child.phase):
                failure = failure or f"child '{child.id}' {child.phase.lower()}"
        for step, plan in planned:
            sname = str(step["name"])
            if isinstance(plan, NodeStatus):
                failure = failure or f"child '{plan.id}' errored: {plan.message}"
                continue
            children = by_step.get(sname, [])
            if step.get("withItems") is None and step.get("withParam") is None and step.get("withSequence") is None:
                if children:
                    local.update(node_vars(f"steps.{sname}", children[0]))
            else:
                agg = NodeStatus(
                    id=gnode.id,
                    name=sname,
                    display_name=sname,
                    type="TaskGroup",
                    template_name="",
                    phase=_aggregate_phase(children, step),
                )
                local.update(node_vars(f"steps.{sname}", agg, children))
        if stopped_early and fail_fast:
            failure = "template has failed or errored children and failFast enabled"
        elif scope.cancelled and not failure:
            failure = scope.reason
        return failure

    # ------------------------------------------------------------------------------------ dag

    def run_dag(self, tmpl: Template, node: NodeStatus, local: dict[str, str], scope: CancelScope) -> None:
        self.book.set_phase(node, "Running")
        dag = tmpl.spec["dag"]
        tasks = {str(t["name"]): t for t in dag["tasks"]}
        order = list(tasks)
        exprs = {n: dagplan.depends_of(t) for n, t in tasks.items()}
        deps = {n: dagplan.dependency_names(e) for n, e in exprs.items()}
        continue_on = {n: dagplan.ContinueOn.of(t.get("continueOn")) for n, t in tasks.items()}
        target_text = substitute(to_text(dag.get("target") or ""), local)
        targets = split_targets(target_text)
        unknown = [t for t in targets if t not in tasks]
        if unknown:
            self.finish(node, "Error", f"dag.target: unknown task {unknown[0]!r}")
            return
        wanted = dagplan.needed(targets, deps) if targets else set(order)
        pending = [n for n in order if n in wanted]
        if not targets:
            targets = dagplan.leaves(pending, deps)
        fail_fast = dag.get("failFast") is not False
        limit = self._template_slots(tmpl, local, scope)
        outcomes: dict[str, dagplan.Outcome] = {}
        done: queue.SimpleQueue[tuple[str, NodeStatus, list[NodeStatus] | None]] = queue.SimpleQueue()
        running = 0
        stopped = False
        # Under failFast, once a target has failed, a task may still start only if each of its
        # dependencies had finished by then or within FAIL_FAST_SETTLE_S after (Argo's controller sees
        # pods that finish together in one pass): which of two simultaneous pods is noticed first
        # must not change the outcome, while a long-running branch still stops.
        settled: set[str] = set()
        stopped_at = 0.0

        def work(name: str, snapshot: dict[str, str]) -> None:
            try:
                tnode, children = self.run_task(tasks[name], node, snapshot, scope)
            finally:
                if limit is not None:
                    limit.release()
            done.put((name, tnode, children))

        while True:
            progressed = True
            while progressed and not scope.cancelled:
                progressed = False
                for name in list(pending):
                    if any(d not in outcomes for d in deps[name]):
                        continue
                    if stopped and not all(d in settled for d in deps[name]):
                        continue
                    if not dagplan.should_run(exprs[name], outcomes, continue_on):
                        self.new_node(
                            f"{node.name}.{name}",
                            name,
                            "Skipped",
                            str(tasks[name]["template"]),
                            node,
                            "Omitted",
                            "omitted: depends condition not met",
                        )
                        outcomes[name] = dagplan.Outcome("Omitted")
                        settled.add(name)
                        local[f"tasks.{name}.status"] = "Omitted"
                        pending.remove(name)
                        progressed = True
                        continue
                    if limit is not None and not limit.try_acquire():
                        continue
                    pending.remove(name)
                    running += 1
                    threading.Thread(target=work, args=(name, dict(local)), daemon=True).start()
            verdict = dagplan.assess(targets, outcomes, deps, continue_on, fail_fast)
            if fail_fast and verdict in ("Failed", "Error") and not stopped:
                stopped = True
                stopped_at = time.monotonic()
                settled = set(outcomes)
            if running == 0:
                break
            name, tnode, children = done.get()
            running -= 1
            if not stopped or time.monotonic() - stopped_at <= FAIL_FAST_SETTLE_S:
                settled.add(name)
            outcomes[name] = dagplan.Outcome(tnode.phase, tuple(c.phase for c in children or []))
            local.update(node_vars(f"tasks.{name}", tnode, children))
        verdict = dagplan.assess(targets, outcomes, deps, continue_on, fail_fast)
        if scope.cancelled and verdict in ("Running", "Succeeded") and pending:
            self.finish(node, "Failed", scope.reason)
            return
        if verdict in ("Failed", "Error"):
            bad = next(
                (
                    n
                    for n in targets
                    if n in outcomes and dagplan.effective_phase(n, outcomes, deps) in ("Failed", "Error")
                ),
                "",
            )
            self.finish(node, verdict, f"task '{node.name}.{bad}' {verdict.lower()}" if bad else "")
            return
        if verdict == "Running":
            self.finish(node, "Failed", scope.reason or "dag did not complete")
            return
        error = self._template_outputs(tmpl, node, local)
        self.finish(node, "Error" if error else "Succeeded", error or "")

    def run_task(
        self, task: dict[str, Any], dag_node: NodeStatus, local: dict[str, str], scope: CancelScope
    ) -> tuple[NodeStatus, list[NodeStatus] | None]:
        name = str(task["name"])
        base = f"{dag_node.name}.{name}"
        try:
            calls = self.calls_for(task, base, name, local)
        except (UnresolvedError, LoopError) as exc:
            bad = self.new_node(base, name, "Skipped", str(task["template"]), dag_node)
            return self.finish(bad, "Error", str(exc)), None
        if task.get("withItems") is None and task.get("withParam") is None and task.get("withSequence") is None:
            return self.run_call(calls[0], dag_node, local, scope, "tasks"), None
        group = self.new_node(base, name, "TaskGroup", str(task["template"]), dag_node)
        self.book.set_phase(group, "Running")
        children: list[NodeStatus | None] = [None] * len(calls)

        def work(i: int, call: Call) -> None:
            spec = {k: v for k, v in call.spec.items() if k not in ("hooks", "onExit")}
            children[i] = self.run_call(Call(spec, call.name, call.display, call.item), group, local, scope, "tasks")

        threads = [threading.Thread(target=work, args=(i, c), daemon=True) for i, c in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        kids = [c for c in children if c is not None]
        phase = _aggregate_phase(kids, task) if kids else "Skipped"
        self.finish(
            group,
            phase,
            next(
                (
                    f"child '{c.id}' {c.phase.lower()}"
                    for c in kids
                    if c.phase == phase and phase in ("Failed", "Error")
                ),
                "",
            ),
        )
        self.run_hook(task, group, dag_node, local, f"tasks.{name}")
        return group, kids


def _aggregate_phase(children: list[NodeStatus], spec: Mapping[str, Any]) -> str:
    continue_on = dagplan.ContinueOn.of(spec.get("continueOn"))
    for c in children:
        if c.failed_or_error and not continue_on.covers(c.phase):
            return c.phase
    return "Succeeded"


def _policy_allows(policy: str, phase: str) -> bool:
    if policy == "Always":
        return phase in ("Failed", "Error")
    if policy == "OnFailure":
        return phase == "Failed"
    if policy == "OnError":
        return phase == "Error"
    return False  # OnTransientError: nothing local is a transient (network) error


ProgressFn = Callable[[NodeStatus], None]
