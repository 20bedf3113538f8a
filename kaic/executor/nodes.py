"""Node bookkeeping: creating nodes under their parent, finishing them, reusing a previous run's."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kaic.executor.dagplan import ContinueOn
from kaic.executor.status import NodeStatus, StatusBook, node_id, now_iso

KIND_OF_TEMPLATE = {
    "container": "Pod",
    "script": "Pod",
    "containerSet": "Pod",
    "steps": "Steps",
    "dag": "DAG",
    "suspend": "Suspend",
}


class NodeKeeper:
    """Creates and finishes the nodes of one workflow run in its :class:`StatusBook`."""

    def __init__(self, book: StatusBook, workflow: str) -> None:
        self.book = book
        self.workflow = workflow
        self._on_running: dict[str, Callable[[NodeStatus], None]] = {}
        self._lock = threading.Lock()

    def when_running(self, node: NodeStatus, callback: Callable[[NodeStatus], None]) -> None:
        """Call ``callback(node)`` once the node runs (now, if it already does)."""
        if node.phase == "Running":
            callback(node)
            return
        with self._lock:
            self._on_running[node.id] = callback

    def create(
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
            id=node_id(self.workflow, name),
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

    def running(self, node: NodeStatus) -> NodeStatus:
        self.book.set_phase(node, "Running")
        with self._lock:
            callback = self._on_running.pop(node.id, None)
        if callback is not None:
            callback(node)
        return node

    def finish(self, node: NodeStatus, phase: str, message: str = "") -> NodeStatus:
        self.book.set_phase(node, phase, message)
        return node

    def error(
        self, name: str, display: str, kind: str, template: str, parent: NodeStatus | None, message: str
    ) -> NodeStatus:
        """A node that could not even start (bad arguments, a failed expression)."""
        return self.finish(self.create(name, display, kind, template, parent), "Error", message)

    def link(self, node: NodeStatus, parents: Sequence[str]) -> None:
        """Add ``node`` as a child of the nodes ``parents`` (ids): Argo hangs a step group under
        the outbound nodes of the group before it."""
        for pid in parents:
            parent = self.book.nodes.get(pid)
            if parent is not None:
                self.book.link(node, parent)

    def outbound(self, node: NodeStatus) -> list[str]:
        """The nodes a Steps/DAG/Retry/TaskGroup node ends with (Argo's getOutboundNodes)."""
        if node.type in ("Steps", "DAG"):
            return list(node.outbound_nodes) or [node.id]
        kids = [self.book.nodes[c] for c in node.children if c in self.book.nodes]
        if node.type == "Retry":
            return self.outbound(kids[-1]) if kids else [node.id]
        if node.type == "TaskGroup" or (node.type == "Pod" and any(k.type == "Container" for k in kids)):
            out = [o for k in kids if k.type != "Pod" or k.name.startswith(node.name) for o in self.outbound(k)]
            return out or [node.id]
        return [node.id]

    def reuse(self, prev: NodeStatus, parent: NodeStatus | None) -> NodeStatus:
        """A previous run's Succeeded node, on resume."""
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


def aggregate_phase(children: Sequence[NodeStatus], spec: Mapping[str, Any]) -> str:
    """A fanned-out step's or task's phase: the first failure its ``continueOn`` does not cover."""
    continue_on = ContinueOn.of(spec.get("continueOn"))
    for c in children:
        if c.failed_or_error and not continue_on.covers(c.phase):
            return c.phase
    return "Succeeded"


def failure_message(children: Sequence[NodeStatus], phase: str) -> str:
    return next((f"child '{c.id}' {c.phase.lower()}" for c in children if c.phase == phase), "")
