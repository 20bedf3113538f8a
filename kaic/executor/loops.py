"""Loop expansion (``withItems``, ``withParam``, ``withSequence``) and Argo durations; pure functions."""

from __future__ import annotations

import json
import re
from typing import Any

from kaic.executor.expressions import to_text


class LoopError(ValueError):
    pass


def parse_param_items(text: str) -> list[Any]:
    """``withParam``: the value must be a JSON list."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoopError(f"withParam value is not a JSON list: {text[:80]!r} ({exc.msg})") from None
    if not isinstance(items, list):
        raise LoopError(f"withParam value is not a JSON list: {text[:80]!r}")
    return items


def _go_printf(fmt: str, value: int) -> str:
    # Go's %d/%x/%X/%o/%02X... map onto Python's %-formatting for one integer argument.
    try:
        return fmt % value
    except (TypeError, ValueError) as exc:
        raise LoopError(f"withSequence.format {fmt!r}: {exc}") from None


def expand_sequence(count: str | None, start: str | None, end: str | None, fmt: str | None) -> list[str]:
    """Argo's ``expandSequence``: ``count`` items from ``start`` (default 0), or ``start``..``end``
    inclusive, counting down when ``start > end``."""

    def as_int(name: str, value: str | None, default: int) -> int:
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise LoopError(f"withSequence.{name}: {value!r} is not an integer") from None

    if count not in (None, "") and end not in (None, ""):
        raise LoopError("withSequence: only one of count or end can be defined")
    first = as_int("start", start, 0)
    if count not in (None, ""):
        n = as_int("count", count, 0)
        if n < 0:
            raise LoopError(f"withSequence.count: {count!r} is negative")
        numbers = list(range(first, first + n))
    elif end not in (None, ""):
        last = as_int("end", end, 0)
        step = 1 if last >= first else -1
        numbers = list(range(first, last + step, step))
    else:
        raise LoopError("withSequence: one of count or end is required")
    return [_go_printf(fmt, n) if fmt else str(n) for n in numbers]


def item_label(item: Any) -> str:
    """How Argo shows an item in a node name: ``name(0:hello)``, maps as ``k:v,k:v``."""
    if isinstance(item, dict):
        return ",".join(f"{k}:{to_text(v)}" for k, v in sorted(item.items()))
    return to_text(item)


def item_scope(item: Any) -> dict[str, str]:
    """The ``item`` / ``item.field`` names one loop item adds to the scope."""
    out = {"item": to_text(item)}
    if isinstance(item, dict):
        for key, value in item.items():
            out[f"item.{key}"] = to_text(value)
    return out


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Argo durations: a bare number is seconds; otherwise Go's ``1h30m``/``10s``/``500ms``."""
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise LoopError(f"{text!r} is not a duration (e.g. 30, 30s, 2m, 1h30m)")
    return total
