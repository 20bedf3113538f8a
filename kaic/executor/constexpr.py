"""Which ``{{= ...}}`` expressions are constant (no names, no task references), so that the manifest
check can evaluate them before anything runs (``{{=1/0}}`` is refused as bad input, exit 2).

The walk is generic over the parser's dataclass nodes, so new node kinds need no change here; a
closure is never treated as constant."""

from __future__ import annotations

import dataclasses
from typing import Any

from kaic.executor import expressions


def is_constant(node: Any) -> bool:
    if isinstance(node, expressions.Name | expressions.Ref) or type(node).__name__ == "Closure":
        return False
    if not dataclasses.is_dataclass(node):
        return True
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        children = value if isinstance(value, tuple | list) else (value,)
        for child in children:
            if isinstance(child, tuple) and not dataclasses.is_dataclass(child):
                if not all(is_constant(c) for c in child):  # e.g. (key, value) pairs of a map literal
                    return False
            elif dataclasses.is_dataclass(child) and not is_constant(child):
                return False
    return True
