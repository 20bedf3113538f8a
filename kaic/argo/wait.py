"""Waiting for a Workflow with a real deadline, printing node phases as they change.

Hera's `Workflow.wait()` has no timeout and returns on Pending; this polls `get_workflow` until a
final phase (Succeeded, Failed, Error) or the deadline, whichever comes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from hera.exceptions import NotFound
from hera.workflows import WorkflowsService
from hera.workflows import models as m

from kaic.argo.connection import ArgoServerError, bound_request_timeout, errors_as_messages

FINAL_PHASES = ("Succeeded", "Failed", "Error")


@dataclass(frozen=True)
class WaitResult:
    name: str
    phase: str | None  # the last phase seen; None if never read
    timed_out: bool
    message: str = ""

    @property
    def exit_code(self) -> int:
        return 0 if self.phase == "Succeeded" and not self.timed_out else 1


@dataclass
class _NodePrinter:
    out: TextIO
    now: Callable[[], datetime]
    seen: dict[str, str] = field(default_factory=dict)

    def update(self, wf: m.Workflow) -> None:
        nodes = (wf.status.nodes if wf.status else None) or {}
        changed = [
            (str(node.started_at.root if node.started_at else ""), node.name, node.phase or "Pending", nid)
            for nid, node in nodes.items() if self.seen.get(nid) != (node.phase or "Pending")
        ]
        stamp = self.now().strftime("%H:%M:%S")
        for _, name, phase, node_id in sorted(changed):
            self.seen[node_id] = phase
            print(f"{stamp}  {phase:<9}  {name}", file=self.out, flush=True)


def wait_for_workflow(
    service: WorkflowsService,
    name: str,
    namespace: str,
    *,
    timeout_s: float,
    poll_s: float = 2.0,
    out: TextIO,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = datetime.now,
) -> WaitResult:
    """Poll until `name` reaches a final phase or `timeout_s` elapses (transient errors are retried)."""
    deadline = clock() + timeout_s
    printer = _NodePrinter(out, now)
    phase: str | None = None
    warned = False
    while True:
        bound_request_timeout(service, deadline - clock())  # a hung server cannot outlast the deadline
        try:
            with errors_as_messages(service, f"read Workflow {namespace}/{name}", allow=(NotFound,)):
                wf = service.get_workflow(name, namespace=namespace)
        except NotFound:
            raise ArgoServerError(f"Workflow {namespace}/{name} no longer exists on {service.host}") from None
        except ArgoServerError as exc:  # a blip during a long wait: say so once, keep polling
            if not warned:
                print(f"warning: {exc}; retrying until the deadline", file=out, flush=True)
                warned = True
        else:
            printer.update(wf)
            phase = (wf.status.phase if wf.status else None) or "Pending"
            if phase in FINAL_PHASES:
                message = (wf.status.message if wf.status else None) or ""
                return WaitResult(name, phase, timed_out=False, message=message)
        left = deadline - clock()
        if left <= 0:
            return WaitResult(name, phase, timed_out=True)
        sleep(min(poll_s, left))

