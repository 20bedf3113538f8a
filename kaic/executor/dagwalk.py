"""The DAG walk: tasks start when their ``depends`` hold (Omitted when they cannot), each task or
loop item fanned out through one :class:`Launcher` bounded by the template's ``parallelism``; the
DAG is judged on its targets (:mod:`dagplan`).

failFast (``dag.failFast``, on by default) is decided on the DAG's shape, never on timing. A task's
level is 0 without dependencies, else one more than its deepest dependency: the reconciliation
pass in which Argo's controller would start it if every pod took as long. Once a target has
failed, tasks up to that target's level still start (Argo schedules them in the same pass in
which it omits or fails the target), deeper ones never do. So a failing target stops a slow
branch's dependents, while tasks that ran alongside the failure's cause still get theirs.
Template-level ``failFast`` starts nothing new after a failed child.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kaic.executor import dagplan
from kaic.executor.calls import run_call
from kaic.executor.expressions import to_text
from kaic.executor.fanout import EMPTY_LOOP_MESSAGE, FAIL_FAST_MESSAGE, Launcher, calls_for, is_loop, template_limit
from kaic.executor.hooks import ExpressionHooks, expression_hooks, run_exit_hook
from kaic.executor.invocation import Call
from kaic.executor.loops import LoopError
from kaic.executor.manifest import Template, split_targets
from kaic.executor.nodes import aggregate_phase, failure_message
from kaic.executor.outputs import template_outputs
from kaic.executor.process import CancelScope
from kaic.executor.status import NodeStatus
from kaic.executor.templating import UnresolvedError, substitute
from kaic.executor.varscope import node_vars, skipped_vars

if TYPE_CHECKING:
    from kaic.executor.scheduler import Engine


@dataclass
class _Group:
    """A fanned-out task: its TaskGroup node and its items as they finish."""

    node: NodeStatus
    size: int
    hooks: ExpressionHooks
    children: dict[int, NodeStatus] = field(default_factory=dict)


def run_dag(eng: Engine, tmpl: Template, node: NodeStatus, local: dict[str, str], scope: CancelScope) -> None:
    keeper = eng.keeper
    keeper.running(node)
    dag = tmpl.spec["dag"]
    tasks = {str(t["name"]): t for t in dag["tasks"]}
    exprs = {n: dagplan.depends_of(t) for n, t in tasks.items()}
    deps = {n: dagplan.dependency_names(e) for n, e in exprs.items()}
    continue_on = {n: dagplan.ContinueOn.of(t.get("continueOn")) for n, t in tasks.items()}
    targets = split_targets(substitute(to_text(dag.get("target") or ""), local))
    unknown = [t for t in targets if t not in tasks]
    if unknown:
        keeper.finish(node, "Error", f"dag.target: unknown task {unknown[0]!r}")
        return
    wanted = dagplan.needed(targets, deps) if targets else set(tasks)
    pending = [n for n in tasks if n in wanted]
    if not targets:
        targets = dagplan.leaves(pending, deps)
    fail_fast = dag.get("failFast") is not False
    template_fail_fast = tmpl.spec.get("failFast") is True
    launcher: Launcher[tuple[str, int], NodeStatus] = Launcher(template_limit(tmpl.spec, local), scope)
    outcomes: dict[str, dagplan.Outcome] = {}
    groups: dict[str, _Group] = {}
    queued: list[tuple[str, int, Call, NodeStatus, dict[str, str]]] = []  # units waiting for a slot
    level = dagplan.levels(deps)
    fail_level: int | None = None  # the failed target's level, once the DAG has failed (failFast)
    child_failed = False

    def resolve(name: str, phase: str, children: list[NodeStatus] | None, tnode: NodeStatus) -> None:
        outcomes[name] = dagplan.Outcome(phase, tuple(c.phase for c in children or []))
        local.update(node_vars(f"tasks.{name}", tnode, children))
        if phase in ("Skipped", "Omitted") and not tnode.parameters:
            local.update(skipped_vars(f"tasks.{name}", eng.model.templates.get(str(tasks[name]["template"])), False))

    def schedule(name: str) -> None:
        task = tasks[name]
        base = f"{node.name}.{name}"
        try:
            calls = calls_for(task, base, name, local)
        except (UnresolvedError, LoopError) as exc:
            bad = keeper.error(base, name, "Skipped", str(task["template"]), node, str(exc))
            resolve(name, "Error", None, bad)
            return
        snapshot = dict(local)
        if not is_loop(task):
            queued.append((name, -1, calls[0], node, snapshot))
            return
        if not calls:
            empty = keeper.create(base, name, "Skipped", str(task["template"]), node, "Skipped", EMPTY_LOOP_MESSAGE)
            resolve(name, "Skipped", [], empty)
            return
        group = keeper.running(keeper.create(base, name, "TaskGroup", str(task["template"]), node))

        def group_scope(g: NodeStatus) -> dict[str, str]:
            return {**snapshot, f"tasks.{name}.status": g.phase}

        hooks = ExpressionHooks(eng, expression_hooks(task), group_scope)
        hooks.observe(group)
        groups[name] = _Group(group, len(calls), hooks)
        queued.extend((name, i, c, group, snapshot) for i, c in enumerate(calls))

    def finish_group(name: str) -> None:
        g = groups[name]
        kids = [g.children[i] for i in sorted(g.children)]
        phase = aggregate_phase(kids, tasks[name]) if kids else "Skipped"
        keeper.finish(g.node, phase, failure_message(kids, phase) if phase in ("Failed", "Error") else "")
        g.hooks.observe(g.node)
        g.hooks.wait()
        run_exit_hook(eng, tasks[name], g.node, {**local, **node_vars(f"tasks.{name}", g.node, kids)})
        resolve(name, phase, kids, g.node)

    while True:
        progressed = True
        while progressed and not scope.cancelled and not (template_fail_fast and child_failed):
            progressed = False
            for name in list(pending):
                if any(d not in outcomes for d in deps[name]):
                    continue
                if fail_level is not None and level[name] > fail_level:
                    continue
                pending.remove(name)
                progressed = True
                if not dagplan.should_run(exprs[name], outcomes, continue_on):
                    omitted = keeper.create(
                        f"{node.name}.{name}",
                        name,
                        "Skipped",
                        str(tasks[name]["template"]),
                        node,
                        "Omitted",
                        "omitted: depends condition not met",
                    )
                    resolve(name, "Omitted", None, omitted)
                    continue
                schedule(name)
        while queued and not scope.cancelled and not (template_fail_fast and child_failed):
            name, index, call, parent, snapshot = queued[0]
            work = functools.partial(run_call, eng, call, parent, snapshot, scope, "tasks")
            if not launcher.start((name, index), work, wait=False):
                break
            queued.pop(0)
        verdict = dagplan.assess(targets, outcomes, deps, continue_on, fail_fast)
        if fail_fast and verdict in ("Failed", "Error") and fail_level is None:
            fail_level = min(level[t] for t in dagplan.failed_targets(targets, outcomes, deps, continue_on))
        if launcher.running == 0:
            if queued and not scope.cancelled and not (template_fail_fast and child_failed):
                continue
            break
        (name, index), child = launcher.next_done()
        if child.failed_or_error and not continue_on[name].covers(child.phase):
            child_failed = True
        if index < 0:
            resolve(name, child.phase, None, child)
        else:
            g = groups[name]
            g.children[index] = child
            if len(g.children) == g.size:
                finish_group(name)
    for name, g in groups.items():  # fan-outs cut short by failFast or cancellation
        if name not in outcomes:
            kids = [g.children[i] for i in sorted(g.children)]
            keeper.finish(g.node, "Failed", FAIL_FAST_MESSAGE if child_failed else scope.reason)
            resolve(name, "Failed", kids, g.node)
    if template_fail_fast and child_failed:
        keeper.finish(node, "Failed", FAIL_FAST_MESSAGE)
        return
    verdict = dagplan.assess(targets, outcomes, deps, continue_on, fail_fast)
    if scope.cancelled and verdict in ("Running", "Succeeded") and (pending or queued):
        keeper.finish(node, "Failed", scope.reason)
        return
    node.outbound_nodes = _outbound(eng, node, targets)
    if verdict in ("Failed", "Error"):
        bad = next(
            (n for n in targets if n in outcomes and dagplan.effective_phase(n, outcomes, deps) in ("Failed", "Error")),
            "",
        )
        keeper.finish(node, verdict, f"task '{node.name}.{bad}' {verdict.lower()}" if bad else "")
        return
    if verdict == "Running":
        keeper.finish(node, "Failed", scope.reason or "dag did not complete")
        return
    node.outbound_nodes = _outbound(eng, node, targets)
    error = template_outputs(tmpl, node, local)
    keeper.finish(node, "Error" if error else "Succeeded", error or "")


def _outbound(eng: Engine, node: NodeStatus, targets: list[str]) -> list[str]:
    by_name = {eng.book.nodes[c].name: eng.book.nodes[c] for c in node.children if c in eng.book.nodes}
    return [
        o for t in targets if f"{node.name}.{t}" in by_name for o in eng.keeper.outbound(by_name[f"{node.name}.{t}"])
    ]
