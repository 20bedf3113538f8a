"""Lifecycle hooks: the exit hook (``hooks.exit``/``onExit``) of a step, task or workflow, and the
expression hooks (``hooks.<name>.expression``) that fire once when their expression turns true.

Argo evaluates expression hooks at every reconciliation; locally a step's or task's hooks are
evaluated when its node starts running and when it has finished, a workflow's when it starts and
when its entrypoint has finished. A hook node is named ``<node>.hooks.<name>`` and is a child of
the hooked node; an exit hook is ``<node>.onExit``. Hook arguments may name outputs that were
never produced: as in Argo, such a tag is left as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kaic.executor.expressions import ExpressionError, evaluate_expr, to_text
from kaic.executor.invocation import Invocation
from kaic.executor.process import CancelScope
from kaic.executor.status import NodeStatus
from kaic.executor.templating import UnresolvedError, absent_ref, nested, substitute, substitute_any

if TYPE_CHECKING:
    from kaic.executor.scheduler import Engine

Hook = Mapping[str, Any]


def exit_hook(spec: Mapping[str, Any]) -> Hook | None:
    hooks = spec.get("hooks") or {}
    if hooks.get("exit"):
        return dict(hooks["exit"])
    if spec.get("onExit"):
        return {"template": spec["onExit"]}
    return None


def expression_hooks(spec: Mapping[str, Any]) -> dict[str, Hook]:
    return {str(k): v for k, v in (spec.get("hooks") or {}).items() if k != "exit"}


def hook_arguments(
    hook: Hook, scope: Mapping[str, str]
) -> tuple[dict[str, str], tuple[dict[str, Any], ...], frozenset[str]]:
    """A hook's arguments, substituted leniently (unknown tags stay as written)."""
    args: dict[str, str] = {}
    dropped: set[str] = set()
    for p in (hook.get("arguments") or {}).get("parameters") or []:
        text = to_text(p.get("value", ""))
        if absent_ref(text, scope):
            dropped.add(str(p["name"]))
        else:
            args[str(p["name"])] = substitute(text, scope, strict=False)
    arts = tuple(substitute_any(a, scope) for a in (hook.get("arguments") or {}).get("artifacts") or [])
    return args, arts, frozenset(dropped)


def hook_scope(eng: Engine) -> CancelScope:
    """Hooks run even when their node failed; an interrupt still stops them."""
    scope = CancelScope()
    scope.timer = eng.timer
    if eng.main_scope.cancelled:
        scope.cancel(eng.main_scope.reason)
    return scope


def run_hook(
    eng: Engine, hook: Hook, name: str, display: str, parent: NodeStatus, scope: Mapping[str, str]
) -> NodeStatus:
    template = eng.model.templates[str(hook["template"])]
    try:
        args, arts, dropped = hook_arguments(hook, scope)
    except UnresolvedError as exc:
        return eng.keeper.error(name, display, "Pod", template.name, parent, str(exc))
    inv = Invocation(template, name, display, parent, hook_scope(eng), args, arts, dropped)
    return eng.invoke(inv)


def run_exit_hook(
    eng: Engine, spec: Mapping[str, Any], node: NodeStatus, scope: Mapping[str, str]
) -> NodeStatus | None:
    """A step's or task's exit hook, once its node has finished."""
    hook = exit_hook(spec)
    if hook is None:
        return None
    if hook.get("expression") and not _true(str(hook["expression"]), scope):
        return None
    return run_hook(eng, hook, f"{node.name}.onExit", f"{node.display_name}.onExit", node, scope)


def _true(expression: str, scope: Mapping[str, str]) -> bool:
    try:
        return evaluate_expr(substitute(expression, scope, strict=False), nested(scope)) is True
    except (ExpressionError, UnresolvedError):
        return False


class ExpressionHooks:
    """The expression hooks of one node; ``observe`` fires those whose expression is now true (each
    at most once, in a thread), ``wait`` waits for the fired ones."""

    def __init__(
        self, eng: Engine, hooks: Mapping[str, Hook], scope_of: Callable[[NodeStatus], Mapping[str, str]]
    ) -> None:
        self.eng = eng
        self.hooks = dict(hooks)
        self.scope_of = scope_of
        self.fired: set[str] = set()
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def observe(self, node: NodeStatus) -> None:
        if not self.hooks:
            return
        scope = self.scope_of(node)
        for hname, hook in self.hooks.items():
            with self._lock:
                if hname in self.fired:
                    continue
            try:
                fire = evaluate_expr(substitute(str(hook.get("expression") or ""), scope, strict=False), nested(scope))
            except (ExpressionError, UnresolvedError) as exc:
                self.errors.append(f"hook {hname!r}: {exc}")
                fire = False
            if fire is not True:
                continue
            with self._lock:
                if hname in self.fired:
                    continue
                self.fired.add(hname)
            t = threading.Thread(
                target=run_hook,
                args=(self.eng, hook, f"{node.name}.hooks.{hname}", f"{node.display_name}.hooks.{hname}", node, scope),
                daemon=True,
            )
            t.start()
            self.threads.append(t)

    def wait(self) -> None:
        for t in list(self.threads):
            t.join()
