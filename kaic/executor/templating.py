"""``{{...}}`` substitution, Argo's way.

A *scope* is a flat mapping of dotted names to strings (``inputs.parameters.message``,
``steps.flip-coin.outputs.result``, ``workflow.name``, ``item``, ...). ``{{ name }}`` is replaced by
the scope value; ``{{= expr }}`` is evaluated as an expr-lang expression against the scope turned
into nested maps (``steps['flip-coin'].outputs.result``). A name that is not in the scope raises
:class:`UnresolvedError`, so nothing is silently left as literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kaic.executor.expressions import ExpressionError, evaluate_expr, to_text

TAG_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class UnresolvedError(ValueError):
    """A ``{{name}}`` whose name is not in scope, or a ``{{= }}`` expression that failed."""


def has_tags(text: str) -> bool:
    return "{{" in text


def tags(text: str) -> list[str]:
    """The stripped contents of every ``{{...}}`` in ``text`` (expressions keep their ``=``)."""
    return [m.group(1).strip() for m in TAG_RE.finditer(text)]


def nested(scope: Mapping[str, str]) -> dict[str, Any]:
    """Dotted flat names -> nested dicts. Where a name is both a value and a prefix of other names
    (an aggregated ``outputs.parameters`` JSON list beside ``outputs.parameters.P``), the map wins."""
    root: dict[str, Any] = {}
    for key in sorted(scope, key=lambda k: k.count(".")):
        parts = key.split(".")
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        if not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = scope[key]
    return root


def substitute(text: str, scope: Mapping[str, str]) -> str:
    if "{{" not in text:
        return text
    context: dict[str, Any] | None = None

    def replace(m: re.Match[str]) -> str:
        nonlocal context
        inner = m.group(1).strip()
        if inner.startswith("="):
            if context is None:
                context = nested(scope)
            try:
                return to_text(evaluate_expr(inner[1:], context))
            except ExpressionError as exc:
                raise UnresolvedError(f"{{{{{inner}}}}}: {exc}") from None
        try:
            return scope[inner]
        except KeyError:
            raise UnresolvedError(f"unable to resolve {{{{{inner}}}}}") from None

    return TAG_RE.sub(replace, text)


def substitute_any(value: Any, scope: Mapping[str, str]) -> Any:
    """Substitute every string inside lists and dicts (keys are left alone)."""
    if isinstance(value, str):
        return substitute(value, scope)
    if isinstance(value, list):
        return [substitute_any(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: substitute_any(v, scope) for k, v in value.items()}
    return value
