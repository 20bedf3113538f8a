"""Retries: a Retry node whose children are the attempts, driven by the pure :mod:`retryplan`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kaic.executor.expressions import ExpressionError, evaluate_expr
from kaic.executor.invocation import Invocation
from kaic.executor.loops import LoopError
from kaic.executor.retryplan import EXPRESSION_FALSE, RetryPlan
from kaic.executor.status import NodeStatus
from kaic.executor.templating import UnresolvedError, nested, substitute

if TYPE_CHECKING:
    from kaic.executor.scheduler import Engine


def run_with_retries(eng: Engine, inv: Invocation, strategy: Mapping[str, Any], local: Mapping[str, str]) -> NodeStatus:
    rnode = eng.keeper.running(eng.keeper.create(inv.name, inv.display, "Retry", inv.template.name, inv.parent))
    if inv.on_running is not None:
        inv.on_running(rnode)
    try:
        plan = RetryPlan.from_spec(strategy, lambda text: substitute(text, local))
    except (ValueError, UnresolvedError, LoopError) as exc:
        return eng.keeper.finish(rnode, "Error", f"retryStrategy: {exc}")
    first = time.monotonic()
    attempt = 0
    while True:
        child = eng.run_once(
            dataclasses.replace(
                inv,
                name=f"{inv.name}({attempt})",
                display=f"{inv.display}({attempt})",
                parent=rnode,
                attempt=attempt,
                on_running=None,
            )
        )
        message: str | None = child.message
        if child.phase == "Succeeded" or inv.cancel.cancelled:
            break
        decision = plan.decide(
            attempt + 1, child.phase, first, child.finished_mono or time.monotonic(), time.monotonic()
        )
        if not decision.retry:
            message = decision.message if decision.message is not None else child.message
            break
        if decision.check_expression and plan.expression and not _expression(plan.expression, local, child):
            message = EXPRESSION_FALSE
            break
        if decision.delay_s > 0 and inv.cancel.event.wait(decision.delay_s):
            break
        attempt += 1
    rnode.parameters, rnode.result, rnode.exit_code = child.parameters, child.result, child.exit_code
    rnode.artifacts = child.artifacts
    return eng.keeper.finish(rnode, child.phase, (message or "") if child.phase != "Succeeded" else "")


def _expression(text: str, local: Mapping[str, str], child: NodeStatus) -> bool:
    duration = max(0.0, child.finished_mono - child.started_mono)
    context = nested(local)
    context["lastRetry"] = {
        "exitCode": child.exit_code if child.exit_code is not None else "-1",
        "status": child.phase,
        "duration": str(int(duration)),
        "message": child.message,
    }
    try:
        return evaluate_expr(substitute(text, local), context) is True
    except (ExpressionError, UnresolvedError) as exc:
        child.message = f"{child.message}; retry expression: {exc}".lstrip("; ")
        return False
