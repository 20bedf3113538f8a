"""Equality- and set-based label selectors ('a=b,c!=d,e,!f,g in (x,y)'), as the API server evaluates them."""

from __future__ import annotations

import re
from collections.abc import Callable

_SET = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_KEY = re.compile(r"[A-Za-z0-9._/-]+")

Term = tuple[str, str, frozenset[str]]  # (op, key, values): op in = != exists !exists in notin


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [t.strip() for t in out if t.strip()]


def parse(selector: str | None) -> list[Term]:
    terms: list[Term] = []
    for term in _split(selector or ""):
        if m := _SET.match(term):
            terms.append((m.group(2), m.group(1), frozenset(v.strip() for v in m.group(3).split(","))))
        elif "!=" in term:
            k, v = (p.strip() for p in term.split("!=", 1))
            terms.append(("!=", k, frozenset({v})))
        elif "=" in term:
            k, v = (p.strip() for p in term.replace("==", "=").split("=", 1))
            terms.append(("=", k, frozenset({v})))
        elif term.startswith("!") and _KEY.fullmatch(term[1:].strip()):
            terms.append(("!exists", term[1:].strip(), frozenset()))
        elif _KEY.fullmatch(term):
            terms.append(("exists", term, frozenset()))
        else:
            raise ValueError(f"label selector {selector!r}: cannot read {term!r}")
    return terms


def _holds(term: Term, labels: dict[str, str]) -> bool:
    op, key, values = term
    value = labels.get(key)
    if op in ("=", "in"):
        return value in values
    if op in ("!=", "notin"):
        return value not in values
    return (key in labels) == (op == "exists")


def matcher(selector: str | None) -> Callable[[dict[str, str]], bool]:
    """A predicate over a labels map; ValueError on a selector it cannot read."""
    terms = parse(selector)
    return lambda labels: all(_holds(t, labels) for t in terms)
