"""The steps walk: groups one after another; the steps of a group (and their loop items) fanned
out together, bounded by the template's ``parallelism``; template ``failFast`` starts nothing
new after a failure."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from kaic.executor.calls import run_call
from kaic.executor.dagplan import ContinueOn
from kaic.executor.fanout import EMPTY_LOOP_MESSAGE, FAIL_FAST_MESSAGE, Launcher, calls_for, is_loop, template_limit
from kaic.executor.invocation import Call
from kaic.executor.loops import LoopError
from kaic.executor.manifest import Template
from kaic.executor.nodes import aggregate_phase
from kaic.executor.outputs import template_outputs
from kaic.executor.process import CancelScope
from kaic.executor.status import NodeStatus
from kaic.executor.templating import UnresolvedError
from kaic.executor.varscope import node_vars, skipped_vars

if TYPE_CHECKING:
    from kaic.executor.scheduler import Engine


def run_steps(eng: Engine, tmpl: Template, node: NodeStatus, local: dict[str, str], scope: CancelScope) -> None:
    keeper = eng.keeper
    keeper.running(node)
    limit = template_limit(tmpl.spec, local)
    fail_fast = tmpl.spec.get("failFast") is True
    prev: NodeStatus | None = None
    for gi, group in enumerate(tmpl.spec["steps"]):
        if scope.cancelled:
            keeper.finish(node, "Failed", scope.reason)
            return
        # The first group hangs under the Steps node, each next one under the outbound nodes of
        # the group before it (as Argo draws it).
        gnode = keeper.create(f"{node.name}[{gi}]", f"[{gi}]", "StepGroup", tmpl.name, node if prev is None else None)
        if prev is not None:
            keeper.link(gnode, _group_outbound(eng, prev) or [prev.id])
        keeper.running(gnode)
        prev = gnode
        failure = run_group(eng, group or [], gnode, local, scope, limit, fail_fast)
        if failure:
            node.outbound_nodes = _group_outbound(eng, gnode)
            keeper.finish(gnode, "Failed", failure)
            keeper.finish(node, "Failed", failure)
            return
        keeper.finish(gnode, "Succeeded")
    if prev is not None:
        node.outbound_nodes = _group_outbound(eng, prev)
    error = template_outputs(tmpl, node, local)
    keeper.finish(node, "Error" if error else "Succeeded", error or "")


def _group_outbound(eng: Engine, gnode: NodeStatus) -> list[str]:
    nodes = eng.book.nodes
    return [
        o
        for c in list(gnode.children)
        if c in nodes and nodes[c].type != "StepGroup"
        for o in eng.keeper.outbound(nodes[c])
    ]


def run_group(
    eng: Engine,
    group: list[dict[str, Any]],
    gnode: NodeStatus,
    local: dict[str, str],
    scope: CancelScope,
    limit: int | None,
    fail_fast: bool,
) -> str:
    """Run one group of parallel steps; the failure message, or "" when the group succeeded."""
    keeper = eng.keeper
    failure = ""
    pending: list[tuple[int, Call]] = []
    by_step: dict[int, list[NodeStatus]] = {}
    for si, step in enumerate(group):
        sname = str(step["name"])
        try:
            calls = calls_for(step, f"{gnode.name}.{sname}", sname, local, keep_hooks=True)
        except (UnresolvedError, LoopError) as exc:
            bad = keeper.error(f"{gnode.name}.{sname}", sname, "Skipped", str(step["template"]), gnode, str(exc))
            failure = failure or f"child '{bad.id}' errored: {bad.message}"
            by_step[si] = []
            continue
        if not calls:
            keeper.create(
                f"{gnode.name}.{sname}", sname, "Skipped", str(step["template"]), gnode, "Skipped", EMPTY_LOOP_MESSAGE
            )
        by_step[si] = []
        pending += [(si, c) for c in calls]
    launcher: Launcher[int, NodeStatus] = Launcher(limit, scope)
    stopped = False
    slots: dict[int, NodeStatus] = {}
    order = list(range(len(pending)))
    nxt = 0
    if failure and fail_fast:
        stopped = True
    while True:
        while nxt < len(pending) and not stopped and not scope.cancelled:
            si, call = pending[nxt]
            work = functools.partial(run_call, eng, call, gnode, local, scope, "steps")
            if not launcher.start(nxt, work, wait=False):
                break
            nxt += 1
        if launcher.running == 0:
            break
        index, child = launcher.next_done()
        slots[index] = child
        si = pending[index][0]
        if child.failed_or_error and not ContinueOn.of(group[si].get("continueOn")).covers(child.phase) and fail_fast:
            stopped = True
    for index in order:
        if index in slots:
            by_step[pending[index][0]].append(slots[index])
    for si, step in enumerate(group):
        sname = str(step["name"])
        children = by_step.get(si, [])
        continue_on = ContinueOn.of(step.get("continueOn"))
        for child in children:
            if child.failed_or_error and not continue_on.covers(child.phase):
                failure = failure or f"child '{child.id}' {child.phase.lower()}"
        if not is_loop(step):
            if children:
                local.update(node_vars(f"steps.{sname}", children[0]))
                if children[0].phase in ("Skipped", "Omitted") and not children[0].parameters:
                    local.update(skipped_vars(f"steps.{sname}", eng.model.templates.get(str(step["template"])), True))
        else:
            agg = NodeStatus(
                id=gnode.id,
                name=sname,
                display_name=sname,
                type="TaskGroup",
                template_name="",
                phase=aggregate_phase(children, step),
            )
            local.update(node_vars(f"steps.{sname}", agg, children))
    if fail_fast and (stopped or failure):
        return FAIL_FAST_MESSAGE
    if scope.cancelled and not failure:
        return scope.reason
    return failure
