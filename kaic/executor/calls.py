"""One step or task: its ``when``, its arguments, the template, and its hooks around it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kaic.executor.expressions import ExpressionError, evaluate_when, to_text
from kaic.executor.hooks import ExpressionHooks, expression_hooks, run_exit_hook
from kaic.executor.invocation import NO_ITEM, Call, Invocation
from kaic.executor.loops import item_scope
from kaic.executor.manifest import Template
from kaic.executor.process import CancelScope
from kaic.executor.status import NodeStatus
from kaic.executor.templating import UnresolvedError, absent_ref, substitute, substitute_any
from kaic.executor.varscope import node_vars

if TYPE_CHECKING:
    from kaic.executor.scheduler import Engine


def call_scope(call: Call, local: Mapping[str, str]) -> dict[str, str]:
    sc = dict(local)
    if call.item is not NO_ITEM:
        sc.update(item_scope(call.item))
    return sc


def arguments(
    spec: Mapping[str, Any], sc: Mapping[str, str], template: Template
) -> tuple[dict[str, str], tuple[dict[str, Any], ...], frozenset[str]]:
    """A call's argument parameters and artifacts; a parameter that is exactly a reference to an
    absent optional is dropped (so the consumer's input default applies), and so is an artifact
    whose source does not exist when it or the consumer's input is optional."""
    optional = {
        str(a.get("name")) for a in (template.spec.get("inputs") or {}).get("artifacts") or [] if a.get("optional")
    }
    args: dict[str, str] = {}
    dropped: set[str] = set()
    for p in (spec.get("arguments") or {}).get("parameters") or []:
        text = to_text(p.get("value", ""))
        if absent_ref(text, sc):
            dropped.add(str(p["name"]))
        else:
            args[str(p["name"])] = substitute(text, sc)
    arts: list[dict[str, Any]] = []
    for a in (spec.get("arguments") or {}).get("artifacts") or []:
        try:
            arts.append(substitute_any(a, sc))
        except UnresolvedError:
            if not (a.get("optional") or str(a.get("name")) in optional):
                raise
    return args, tuple(arts), frozenset(dropped)


def run_call(
    eng: Engine, call: Call, parent: NodeStatus, local: Mapping[str, str], scope: CancelScope, prefix: str
) -> NodeStatus:
    """Run one step (``prefix`` "steps") or task ("tasks") under ``parent``; its node."""
    spec = call.spec
    sc = call_scope(call, local)
    template = eng.model.templates[call.template_name]
    try:
        when = spec.get("when")
        if when is not None:
            text = substitute(to_text(when), sc)
            if not evaluate_when(text):
                return eng.keeper.create(
                    call.name,
                    call.display,
                    "Skipped",
                    template.name,
                    parent,
                    "Skipped",
                    f"when '{text}' evaluated false",
                )
        args, arts, dropped = arguments(spec, sc, template)
    except (UnresolvedError, ExpressionError) as exc:
        return eng.keeper.error(call.name, call.display, "Skipped", template.name, parent, str(exc))
    ref = f"{prefix}.{call.display}"

    def hook_scope_of(node: NodeStatus) -> dict[str, str]:
        out = dict(sc)
        out[f"{ref}.status"] = node.phase
        if node.fulfilled:
            out.update(node_vars(ref, node))
        return out

    hooks = ExpressionHooks(eng, expression_hooks(spec), hook_scope_of)
    inv = Invocation(
        template,
        call.name,
        call.display,
        parent,
        scope,
        args,
        arts,
        dropped,
        on_running=hooks.observe if hooks.hooks else None,
    )
    child = eng.invoke(inv)
    hooks.observe(child)
    hooks.wait()
    if hooks.errors:  # Argo marks the hooked node's parent errored; here the hooked node says why
        eng.keeper.finish(child, "Error", "; ".join(dict.fromkeys(hooks.errors)))
    run_exit_hook(eng, spec, child, hook_scope_of(child))
    return child
