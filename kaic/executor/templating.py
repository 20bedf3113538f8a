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

# The scope value of an "absent optional": an output of a Skipped or Omitted producer that declared
# no ``valueFrom.default`` (Argo keeps it as nil). ``{{name}}`` of it is an error, an expression sees
# nil (so ``??`` applies), and an argument that is exactly ``{{name}}`` is dropped so that the
# consumer's input default applies (Argo's markAbsentOptionalArgs).
ABSENT = "\x00absent-optional\x00"
ABSENT_MESSAGE = "output is an absent optional (skipped/omitted node with no default)"


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
            value = scope[key]
            node[parts[-1]] = None if value == ABSENT else value
    return root


def substitute(text: str, scope: Mapping[str, str], strict: bool = True) -> str:
    """Replace every ``{{...}}``; ``strict=False`` leaves a tag whose name is unknown as it is
    (Argo does so for exit-hook arguments)."""
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
            value = scope[inner]
        except KeyError:
            if not strict:
                return m.group(0)
            raise UnresolvedError(f"unable to resolve {{{{{inner}}}}}") from None
        if value == ABSENT:
            raise UnresolvedError(f"unable to substitute {{{{{inner}}}}}: {ABSENT_MESSAGE}")
        return value

    return TAG_RE.sub(replace, text)


def absent_ref(text: str, scope: Mapping[str, str]) -> bool:
    """Whether ``text`` is exactly one ``{{name}}`` whose value is an absent optional."""
    m = TAG_RE.fullmatch(text.strip())
    return bool(m) and scope.get(m.group(1).strip()) == ABSENT if m else False


def substitute_any(value: Any, scope: Mapping[str, str]) -> Any:
    """Substitute every string inside lists and dicts (keys are left alone)."""
    if isinstance(value, str):
        return substitute(value, scope)
    if isinstance(value, list):
        return [substitute_any(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: substitute_any(v, scope) for k, v in value.items()}
    return value
