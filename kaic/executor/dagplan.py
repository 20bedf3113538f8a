"""Pure DAG decisions, following Argo's ``workflow/controller/dag.go``.

- A task is *ready* when every task its ``depends``/``dependencies`` mention is fulfilled
  (Succeeded, Failed, Error, Skipped or Omitted). Its ``depends`` is then evaluated; false means the
  task is **Omitted**. A bare ``A`` means ``A.Succeeded || A.Skipped`` (plus ``A.Failed`` /
  ``A.Errored`` when A has ``continueOn`` failed / error); ``dependencies: [A, B]`` means ``A && B``.
- The DAG's phase is judged on its *target* tasks (``dag.target``, else the leaves: tasks nothing
  depends on). A Skipped or Omitted task takes the worst phase of the branches leading to it
  (Argo: "an omitted task inherits the phase of its parents"). A failed target whose task has
  ``continueOn`` for that phase does not fail the DAG.
- With ``failFast`` (the default), once a target's phase is Failed/Error no new task starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaic.executor.expressions import Binary, Node, Ref, depends_refs, evaluate_depends, parse_depends


@dataclass(frozen=True)
class ContinueOn:
    failed: bool = False
    error: bool = False

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None) -> ContinueOn:
        spec = spec or {}
        return cls(bool(spec.get("failed")), bool(spec.get("error")))

    def covers(self, phase: str) -> bool:
        return (phase == "Failed" and self.failed) or (phase == "Error" and self.error)


@dataclass(frozen=True)
class Outcome:
    """How a finished task ended; ``children`` are the phases of a fanned-out task's items."""

    phase: str
    children: tuple[str, ...] = field(default_factory=tuple)


def depends_of(task: Mapping[str, Any]) -> Node | None:
    if task.get("depends") is not None:
        return parse_depends(str(task["depends"]))
    deps = task.get("dependencies") or []
    node: Node | None = None
    for dep in deps:
        ref = Ref(str(dep), "")
        node = ref if node is None else Binary("&&", node, ref)
    return node


def dependency_names(expr: Node | None) -> list[str]:
    if expr is None:
        return []
    out: list[str] = []
    for ref in depends_refs(expr):
        if ref.task not in out:
            out.append(ref.task)
    return out


def ref_value(outcome: Outcome, selector: str, continue_on: ContinueOn) -> bool:
    phase = outcome.phase
    if selector == "":
        return phase in ("Succeeded", "Skipped") or continue_on.covers(phase)
    if selector == "Errored":
        return phase == "Error"
    if selector == "AnySucceeded":
        kids = outcome.children or (phase,)
        return any(p == "Succeeded" for p in kids)
    if selector == "AllFailed":
        kids = outcome.children or (phase,)
        return bool(kids) and all(p in ("Failed", "Error") for p in kids)
    return phase == selector


def should_run(expr: Node | None, outcomes: Mapping[str, Outcome], continue_on: Mapping[str, ContinueOn]) -> bool:
    if expr is None:
        return True
    return evaluate_depends(
        expr, lambda task, selector: ref_value(outcomes[task], selector, continue_on.get(task, ContinueOn()))
    )


def needed(targets: Iterable[str], deps: Mapping[str, Sequence[str]]) -> set[str]:
    """The targets and everything they transitively depend on."""
    out: set[str] = set()
    stack = list(targets)
    while stack:
        name = stack.pop()
        if name not in out:
            out.add(name)
            stack.extend(deps.get(name, ()))
    return out


def leaves(names: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    depended = {d for n in names for d in deps.get(n, ())}
    return [n for n in names if n not in depended]


def effective_phase(
    name: str,
    outcomes: Mapping[str, Outcome],
    deps: Mapping[str, Sequence[str]],
    memo: dict[str, str] | None = None,
) -> str:
    """A task's phase for judging the DAG: its own when it ran, else the worst of its branches."""
    memo = {} if memo is None else memo
    if name in memo:
        return memo[name]
    phase = outcomes[name].phase
    if phase in ("Skipped", "Omitted"):
        phase = "Succeeded"
        for dep in deps.get(name, ()):
            if dep in outcomes:
                dep_phase = effective_phase(dep, outcomes, deps, memo)
                if dep_phase in ("Failed", "Error"):
                    phase = dep_phase
                    break
    memo[name] = phase
    return phase


def levels(deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each task's level: 0 without dependencies, else one more than its deepest dependency."""
    out: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in out:
            out[name] = 0  # a cycle was refused by validation; this only guards recursion
            out[name] = 1 + max((level(d) for d in deps.get(name, ())), default=-1)
        return out[name]

    for name in deps:
        level(name)
    return out


def failed_targets(
    targets: Sequence[str],
    outcomes: Mapping[str, Outcome],
    deps: Mapping[str, Sequence[str]],
    continue_on: Mapping[str, ContinueOn],
) -> list[str]:
    """The targets whose (effective) phase fails the DAG."""
    memo: dict[str, str] = {}
    return [
        n
        for n in targets
        if n in outcomes
        and (phase := effective_phase(n, outcomes, deps, memo)) in ("Failed", "Error")
        and not continue_on.get(n, ContinueOn()).covers(phase)
    ]


def assess(
    targets: Sequence[str],
    outcomes: Mapping[str, Outcome],
    deps: Mapping[str, Sequence[str]],
    continue_on: Mapping[str, ContinueOn],
    fail_fast: bool,
) -> str:
    """Running, Succeeded, Failed or Error: Argo's ``assessDAGPhase`` over the target tasks."""
    result = "Succeeded"
    memo: dict[str, str] = {}
    for name in targets:
        if name not in outcomes:
            result = "Running"
            if not fail_fast:
                break
            continue
        phase = effective_phase(name, outcomes, deps, memo)
        if phase in ("Failed", "Error"):
            if continue_on.get(name, ContinueOn()).covers(phase):
                continue
            result = phase
            if fail_fast:
                break
    return result
