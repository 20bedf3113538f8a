"""The workflow's life: the entrypoint, the workflow-level hooks, the deadline, the exit handler;
and ``invoke``, which runs one template under one node (memoize, synchronization, retries, then
the pod, suspend, steps or DAG).

Each template invocation runs in the thread that asked for it; parallel children are fanned out by
:mod:`fanout`, and leaf pods block in ``waitpid``. The other jobs live in their own modules:
:mod:`nodes` (bookkeeping), :mod:`varscope` (variables), :mod:`retries`/:mod:`retryplan`,
:mod:`pods`, :mod:`outputs`, :mod:`fanout`, :mod:`hooks`, :mod:`calls`, :mod:`stepswalk`,
:mod:`dagwalk`, :mod:`memo` and :mod:`locks`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaic.executor.artifacts import ArtifactError
from kaic.executor.dagwalk import run_dag
from kaic.executor.expressions import ExpressionError, to_text
from kaic.executor.hooks import ExpressionHooks, exit_hook, expression_hooks, hook_arguments
from kaic.executor.invocation import Invocation
from kaic.executor.locks import LOCKS, LockError, lock_specs
from kaic.executor.loops import LoopError, parse_duration
from kaic.executor.manifest import WorkflowModel
from kaic.executor.memo import Memo, MemoCache, apply_outputs
from kaic.executor.nodes import KIND_OF_TEMPLATE, NodeKeeper
from kaic.executor.pods import run_pod, write_argosay_shim
from kaic.executor.process import CancelScope, Slots, Timer
from kaic.executor.retries import run_with_retries
from kaic.executor.status import NodeStatus, StatusBook
from kaic.executor.stepswalk import run_steps
from kaic.executor.templating import UnresolvedError, substitute
from kaic.executor.varscope import Globals, resolve_inputs, template_scope

WORKFLOW_DEADLINE_MESSAGE = "Step exceeded its deadline"


@dataclass
class EngineConfig:
    run_dir: Path  # $KAIC_HOME/runs/<name>
    store_dir: Path
    max_parallel: int
    extra_env: dict[str, str] = field(default_factory=dict)
    base_env: dict[str, str] = field(default_factory=dict)

    @property
    def kaic_home(self) -> Path:
        return self.run_dir.parent.parent


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
        self.spec: dict[str, Any] = model.manifest.get("spec") or {}
        self.name = name
        self.uid = uid
        self.book = book
        self.config = config
        self.keeper = NodeKeeper(book, name)
        self.previous = dict(previous or {})
        self.timer = Timer()
        self.main_scope = CancelScope()
        self.main_scope.timer = self.timer
        self.exit_scope: CancelScope | None = None
        limit = config.max_parallel if model.parallelism is None else min(config.max_parallel, model.parallelism)
        self.pods = Slots(limit)
        self.main_scope.watch(self.pods)
        self.deadline_exceeded = False
        self.globals = Globals(model, name, uid, book.started_at)
        self.memo = MemoCache(config.kaic_home / "memo")
        self.env = dict(config.base_env)
        bin_dir = config.run_dir / "bin"
        write_argosay_shim(bin_dir)
        self.env["PATH"] = str(bin_dir) + os.pathsep + self.env.get("PATH", os.defpath)
        self.env.update(config.extra_env)

    # ------------------------------------------------------------------------------------ workflow

    def run(self) -> tuple[str, str]:
        """Run the entrypoint, the workflow's hooks and its exit handler; the (phase, message)."""
        m = self.model
        deadline = None
        if m.active_deadline_seconds is not None:

            def expire() -> None:
                self.deadline_exceeded = True
                self.main_scope.cancel(WORKFLOW_DEADLINE_MESSAGE)

            deadline = self.timer.schedule(m.active_deadline_seconds, expire)
        locks = []
        try:
            hooks = ExpressionHooks(self, expression_hooks(self.spec), lambda _node: self.globals.snapshot())
            try:
                locks = lock_specs(self.spec.get("synchronization"), self.config.kaic_home / "configmaps")
            except LockError as exc:
                root = self.keeper.error(self.name, self.name, "Pod", m.entrypoint, None, str(exc))
                return "Error", root.message
            if not LOCKS.acquire(locks, self.main_scope):
                locks = []
            root = self.invoke(
                Invocation(
                    m.templates[m.entrypoint],
                    self.name,
                    self.name,
                    None,
                    self.main_scope,
                    dict(m.parameters),
                    on_running=hooks.observe if hooks.hooks else None,
                )
            )
            if deadline is not None:
                self.timer.cancel(deadline)
            phase = root.phase if root.phase in ("Succeeded", "Failed", "Error") else "Failed"
            message = root.message if phase != "Succeeded" else ""
            if self.main_scope.cancelled:
                phase = "Failed"
                message = "Workflow exceeded its deadline" if self.deadline_exceeded else self.main_scope.reason
            self.globals.set("workflow.status", phase)
            self.globals.set("workflow.failures", json.dumps(self.book.failures(), separators=(",", ":")))
            hooks.observe(root)
            hooks.wait()
            if hooks.errors:  # Argo marks the root node errored
                phase, message = "Error", "; ".join(dict.fromkeys(hooks.errors))
                self.keeper.finish(root, "Error", message)
            handler_hook = exit_hook(self.spec)
            if handler_hook is not None:
                handler = self._exit_handler(handler_hook)
                if handler.phase in ("Failed", "Error") and phase == "Succeeded":
                    phase, message = handler.phase, f"exit handler {handler.phase.lower()}: {handler.message}"
            outputs = self.globals.outputs()
            if outputs:
                self.book.extra["outputs"] = outputs
            return phase, message
        finally:
            LOCKS.release(locks)
            self.timer.stop()

    def _exit_handler(self, hook: Mapping[str, Any]) -> NodeStatus:
        self.exit_scope = CancelScope()
        self.exit_scope.timer = self.timer
        self.exit_scope.watch(self.pods)
        scope = self.globals.snapshot()
        name = f"{self.name}.onExit"
        template = self.model.templates[str(hook["template"])]
        try:
            args, arts, dropped = hook_arguments(hook, scope)
        except UnresolvedError as exc:
            return self.keeper.error(name, "onExit", "Pod", template.name, None, str(exc))
        return self.invoke(Invocation(template, name, "onExit", None, self.exit_scope, args, arts, dropped))

    def interrupt(self, reason: str = "interrupted") -> None:
        """Stop running nodes (SIGTERM their process groups); a second call also stops the exit handler."""
        if self.main_scope.cancelled and self.exit_scope is not None:
            self.exit_scope.cancel(reason)
        self.main_scope.cancel(reason)

    def kill(self) -> None:
        """SIGKILL every running node's process group (main workflow and exit handler) at once."""
        for scope in (self.main_scope, self.exit_scope):
            if scope is not None:
                scope.kill()

    # ------------------------------------------------------------------------------------ templates

    def invoke(self, inv: Invocation) -> NodeStatus:
        """Run one template under node ``inv.name`` (memoized, synchronized, retried); its node once
        finished."""
        tmpl = inv.template
        prev = self.previous.get(inv.name)
        if (
            prev is not None
            and prev.phase == "Succeeded"
            and tmpl.kind in ("container", "script", "containerSet", "suspend")
        ):
            return self.keeper.reuse(prev, inv.parent)
        kind = KIND_OF_TEMPLATE[tmpl.kind]
        scope = self.globals.snapshot()
        try:
            inputs = resolve_inputs(tmpl, inv.args, inv.dropped, scope)
        except UnresolvedError as exc:
            return self.keeper.error(inv.name, inv.display, kind, tmpl.name, inv.parent, str(exc))
        inv = dataclasses.replace(inv, args=inputs, dropped=frozenset())
        local = {**scope, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        memo: Memo | None = None
        if tmpl.spec.get("memoize"):
            try:
                memo = Memo.of(tmpl.spec["memoize"], substitute(to_text(tmpl.spec["memoize"].get("key", "")), local))
            except (UnresolvedError, LoopError) as exc:
                return self.keeper.error(inv.name, inv.display, kind, tmpl.name, inv.parent, f"memoize: {exc}")
            cached = self.memo.load(memo)
            if cached is not None:
                node = self.keeper.create(inv.name, inv.display, kind, tmpl.name, inv.parent)
                apply_outputs(node, cached)
                node.memoization = memo.status(hit=True)
                self.globals.export(tmpl.spec.get("outputs") or {}, node.parameters, node.artifacts)
                return self.keeper.finish(node, "Succeeded")
        try:
            locks = lock_specs(tmpl.spec.get("synchronization"), self.config.kaic_home / "configmaps")
        except LockError as exc:
            return self.keeper.error(inv.name, inv.display, kind, tmpl.name, inv.parent, str(exc))
        if not LOCKS.acquire(locks, inv.cancel):
            return self.keeper.finish(
                self.keeper.create(inv.name, inv.display, kind, tmpl.name, inv.parent), "Failed", inv.cancel.reason
            )
        try:
            strategy = tmpl.spec.get("retryStrategy") or self.spec.get("retryStrategy")
            node = run_with_retries(self, inv, strategy, local) if strategy else self.run_once(inv)
        finally:
            LOCKS.release(locks)
        if memo is not None:
            node.memoization = memo.status(hit=False)
            if node.phase == "Succeeded":
                self.memo.save(memo, node)
        return node

    def run_once(self, inv: Invocation) -> NodeStatus:
        """One attempt: the node, its scope, then the template's body."""
        tmpl = inv.template
        node = self.keeper.create(inv.name, inv.display, KIND_OF_TEMPLATE[tmpl.kind], tmpl.name, inv.parent)
        node.inputs = [{"name": k, "value": v} for k, v in inv.args.items()]
        local = template_scope(self.globals.snapshot(), inv.args, self._input_artifact_keys(inv), node)
        if inv.attempt is not None:
            local["retries"] = str(inv.attempt)
        if inv.cancel.cancelled:
            return self.keeper.finish(node, "Failed", inv.cancel.reason)
        if inv.on_running is not None:
            self.keeper.when_running(node, inv.on_running)
        try:
            if tmpl.kind in ("container", "script", "containerSet"):
                run_pod(self, tmpl, node, local, inv.artifacts, inv.cancel)
            elif tmpl.kind == "suspend":
                self._suspend(tmpl.spec, node, local, inv.cancel)
            elif tmpl.kind == "steps":
                run_steps(self, tmpl, node, local, inv.cancel)
            else:
                run_dag(self, tmpl, node, local, inv.cancel)
        except (UnresolvedError, ExpressionError, LoopError, ArtifactError, ValueError) as exc:
            self.keeper.finish(node, "Error", str(exc))
        if node.phase in ("Succeeded", "Failed", "Error"):
            self.globals.export(tmpl.spec.get("outputs") or {}, node.parameters, node.artifacts)
        return node

    def _input_artifact_keys(self, inv: Invocation) -> dict[str, str]:
        """``inputs.artifacts.X``: the store key each input artifact comes from."""
        given = {str(a.get("name")): a for a in inv.artifacts}
        out: dict[str, str] = {}
        for spec in (inv.template.spec.get("inputs") or {}).get("artifacts") or []:
            merged = {**spec, **given.get(str(spec.get("name")), {})}
            key = merged.get("from") or (merged.get("s3") or {}).get("key")
            if key and "{{" not in str(key):
                out[str(spec["name"])] = str(key)
        return out

    def _suspend(self, spec: Mapping[str, Any], node: NodeStatus, local: Mapping[str, str], scope: CancelScope) -> None:
        seconds = parse_duration(substitute(to_text(spec["suspend"]["duration"]), local))
        self.keeper.running(node)
        if scope.event.wait(seconds):
            self.keeper.finish(node, "Failed", scope.reason)
        else:
            self.keeper.finish(node, "Succeeded")
