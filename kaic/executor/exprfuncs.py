"""The functions an expr-lang expression can call, as Argo provides them (util/expr/env): expr-lang's
builtins, Argo's own (``asInt``, ``asFloat``, ``jsonpath``, ``toJson``, ``string``) and sprig as
``sprig.NAME``. Closure builtins (``filter``, ``map``, ``all`` ...) get their predicates as
callables from the evaluator.
"""

from __future__ import annotations

import base64
import json
import math
import re
import statistics
from collections.abc import Callable, Mapping
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse as jsonpath_parse

from kaic.executor.expressions import ExpressionError, to_text

Pred = Callable[[Any], Any]


def _bool(value: Any, func: str) -> bool:
    if not isinstance(value, bool):
        raise ExpressionError(f"{func}: predicate returned {value!r}, not a boolean")
    return value


def _items(collection: Any, func: str) -> list[Any]:
    if isinstance(collection, list | tuple):
        return list(collection)
    if isinstance(collection, Mapping):
        return list(collection.values())
    raise ExpressionError(f"{func}: {collection!r} is not a list")


def _filter(xs: Any, p: Pred) -> list[Any]:
    return [x for x in _items(xs, "filter") if _bool(p(x), "filter")]


def _count(xs: Any, p: Pred | None = None) -> int:
    if p is None:
        return sum(1 for x in _items(xs, "count") if _bool(x, "count"))
    return sum(1 for x in _items(xs, "count") if _bool(p(x), "count"))


def _find(xs: Any, p: Pred, reverse: bool = False, index: bool = False) -> Any:
    items = list(enumerate(_items(xs, "find")))
    for i, x in reversed(items) if reverse else items:
        if _bool(p(x), "find"):
            return i if index else x
    return -1 if index else None


def _sum(xs: Any, p: Pred | None = None) -> Any:
    values = [p(x) if p else x for x in _items(xs, "sum")]
    total: Any = 0
    for v in values:
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise ExpressionError(f"sum: {v!r} is not a number")
        total += v
    return total


def _reduce(xs: Any, p: Pred, initial: Any = None) -> Any:
    raise ExpressionError("reduce is not supported locally")


def _group_by(xs: Any, p: Pred) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for x in _items(xs, "groupBy"):
        out.setdefault(to_text(p(x)), []).append(x)
    return out


def _sort_by(xs: Any, p: Pred, order: Any = "asc") -> list[Any]:
    return sorted(_items(xs, "sortBy"), key=p, reverse=order == "desc")


CLOSURE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "all": lambda xs, p: all(_bool(p(x), "all") for x in _items(xs, "all")),
    "any": lambda xs, p: any(_bool(p(x), "any") for x in _items(xs, "any")),
    "none": lambda xs, p: not any(_bool(p(x), "none") for x in _items(xs, "none")),
    "one": lambda xs, p: sum(1 for x in _items(xs, "one") if _bool(p(x), "one")) == 1,
    "filter": _filter,
    "map": lambda xs, p: [p(x) for x in _items(xs, "map")],
    "count": _count,
    "find": lambda xs, p: _find(xs, p),
    "findIndex": lambda xs, p: _find(xs, p, index=True),
    "findLast": lambda xs, p: _find(xs, p, reverse=True),
    "findLastIndex": lambda xs, p: _find(xs, p, reverse=True, index=True),
    "groupBy": _group_by,
    "sortBy": _sort_by,
    "sum": _sum,
    "reduce": _reduce,
}


def jsonpath(document: Any, path: str) -> Any:
    """Argo's ``jsonpath(json, path)``: one value for a definite path, a list when the path can
    match several (wildcards, filters, slices, recursive descent)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise ExpressionError(f"jsonpath: not JSON: {exc}") from None
    try:
        compiled = jsonpath_parse(path)
    except (JsonPathLexerError, JsonPathParserError, ValueError, TypeError, AttributeError) as exc:
        raise ExpressionError(f"jsonpath {path!r}: {exc}") from None
    matches = [m.value for m in compiled.find(document)]
    if re.search(r"\*|\?|\.\.|\[[^\]]*:[^\]]*\]|,", path):
        return matches
    if not matches:
        raise ExpressionError(f"jsonpath {path!r}: no match")
    return matches[0]


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ExpressionError(f"{value!r} is not a number")
    if isinstance(value, int):
        return value
    try:
        return int(float(value)) if not isinstance(value, str) or "." in value or "e" in value.lower() else int(value)
    except (TypeError, ValueError):
        raise ExpressionError(f"{value!r} is not a number") from None


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ExpressionError(f"{value!r} is not a number") from None


def _from_json(value: Any) -> Any:
    try:
        return json.loads(value)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ExpressionError(f"fromJSON: {exc}") from None


def _to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _get(obj: Any, key: Any) -> Any:
    """expr-lang's ``get``: nil (not an error) for a missing key or index."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    if isinstance(obj, list | str):
        try:
            return obj[int(key)]
        except (IndexError, ValueError, TypeError):
            return None
    return None


def _join(xs: Any, sep: str = "") -> str:
    return str(sep).join(to_text(x) for x in _items(xs, "join"))


def _concat(*lists: Any) -> list[Any]:
    out: list[Any] = []
    for xs in lists:
        out.extend(_items(xs, "concat"))
    return out


def _flatten(xs: Any) -> list[Any]:
    out: list[Any] = []
    for x in _items(xs, "flatten"):
        out.extend(_flatten(x) if isinstance(x, list) else [x])
    return out


def _uniq(xs: Any) -> list[Any]:
    out: list[Any] = []
    for x in _items(xs, "uniq"):
        if x not in out:
            out.append(x)
    return out


def _len(value: Any) -> int:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise ExpressionError(f"len: {value!r} has no length")


def _numbers(args: tuple[Any, ...], func: str) -> list[float | int]:
    values = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not values:
        raise ExpressionError(f"{func}: no values")
    for v in values:
        if _num_or_none(v) is None:
            raise ExpressionError(f"{func}: {v!r} is not a number")
    return values


def _num_or_none(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _split(s: Any, sep: str, n: int = -1) -> list[str]:
    return str(s).split(str(sep)) if n < 0 else str(s).split(str(sep), n - 1)


def _default(default: Any, value: Any = None) -> Any:
    return value if value not in (None, "", 0, False, [], {}) else default


def _empty(value: Any) -> bool:
    return value in (None, "", 0, False) or (isinstance(value, list | dict) and not value)


def _trunc(n: int, s: str) -> str:
    return s[:n] if n >= 0 else s[n:]


SPRIG: dict[str, Callable[..., Any]] = {
    "trim": lambda s: str(s).strip(),
    "trimAll": lambda cut, s: str(s).strip(str(cut)),
    "trimPrefix": lambda p, s: str(s).removeprefix(str(p)),
    "trimSuffix": lambda p, s: str(s).removesuffix(str(p)),
    "upper": lambda s: str(s).upper(),
    "lower": lambda s: str(s).lower(),
    "title": lambda s: str(s).title(),
    "repeat": lambda n, s: str(s) * _as_int(n),
    "substr": lambda a, b, s: str(s)[_as_int(a) : _as_int(b)],
    "trunc": lambda n, s: _trunc(_as_int(n), str(s)),
    "nospace": lambda s: re.sub(r"\s+", "", str(s)),
    "quote": lambda *xs: " ".join(json.dumps(to_text(x)) for x in xs),
    "squote": lambda *xs: " ".join(f"'{to_text(x)}'" for x in xs),
    "cat": lambda *xs: " ".join(to_text(x) for x in xs if x is not None),
    "contains": lambda sub, s: str(sub) in str(s),
    "hasPrefix": lambda p, s: str(s).startswith(str(p)),
    "hasSuffix": lambda p, s: str(s).endswith(str(p)),
    "replace": lambda old, new, s: str(s).replace(str(old), str(new)),
    "split": lambda sep, s: {f"_{i}": v for i, v in enumerate(str(s).split(str(sep)))},
    "splitList": lambda sep, s: str(s).split(str(sep)),
    "join": lambda sep, xs: str(sep).join(to_text(x) for x in xs),
    "toString": to_text,
    "toStrings": lambda xs: [to_text(x) for x in xs],
    "int": _as_int,
    "int64": _as_int,
    "atoi": _as_int,
    "float64": _as_float,
    "add": lambda *xs: sum(_as_int(x) for x in xs),
    "add1": lambda x: _as_int(x) + 1,
    "sub": lambda a, b: _as_int(a) - _as_int(b),
    "mul": lambda *xs: math.prod(_as_int(x) for x in xs),
    "div": lambda a, b: _as_int(a) // _as_int(b),
    "mod": lambda a, b: _as_int(a) % _as_int(b),
    "max": lambda *xs: max(_as_int(x) for x in xs),
    "min": lambda *xs: min(_as_int(x) for x in xs),
    "default": _default,
    "empty": _empty,
    "coalesce": lambda *xs: next((x for x in xs if not _empty(x)), None),
    "ternary": lambda a, b, cond: a if cond else b,
    "list": lambda *xs: list(xs),
    "dict": lambda *kv: {to_text(kv[i]): kv[i + 1] for i in range(0, len(kv) - 1, 2)},
    "first": lambda xs: xs[0] if xs else None,
    "last": lambda xs: xs[-1] if xs else None,
    "rest": lambda xs: list(xs[1:]),
    "initial": lambda xs: list(xs[:-1]),
    "uniq": _uniq,
    "has": lambda x, xs: x in xs,
    "sortAlpha": lambda xs: sorted(to_text(x) for x in xs),
    "reverse": lambda xs: list(reversed(xs)),
    "until": lambda n: list(range(_as_int(n))),
    "seq": lambda *xs: " ".join(str(i) for i in range(_as_int(xs[0]), _as_int(xs[-1]) + 1)),
    "b64enc": lambda s: base64.b64encode(str(s).encode()).decode(),
    "b64dec": lambda s: base64.b64decode(str(s)).decode(),
    "toJson": _to_json,
    "toRawJson": _to_json,
    "toPrettyJson": lambda v: json.dumps(v, indent=2),
    "fromJson": _from_json,
    "regexMatch": lambda pattern, s: re.search(str(pattern), str(s)) is not None,
    "regexFind": lambda pattern, s: m.group(0) if (m := re.search(str(pattern), str(s))) else "",
    "regexReplaceAll": lambda pattern, s, repl: re.sub(str(pattern), str(repl).replace("$", "\\"), str(s)),
    "indent": lambda n, s: "\n".join(" " * _as_int(n) + line for line in str(s).split("\n")),
    "len": _len,
}

FUNCTIONS: dict[str, Callable[..., Any]] = {
    # Argo's additions
    "jsonpath": jsonpath,
    "asInt": _as_int,
    "asFloat": _as_float,
    "toJson": _to_json,
    # expr-lang builtins
    "string": to_text,
    "int": _as_int,
    "float": _as_float,
    "toJSON": _to_json,
    "fromJSON": _from_json,
    "fromJson": _from_json,
    "toBase64": lambda s: base64.b64encode(str(s).encode()).decode(),
    "fromBase64": lambda s: base64.b64decode(str(s)).decode(),
    "len": _len,
    "get": _get,
    "keys": lambda m: list(m.keys()),
    "values": lambda m: list(m.values()),
    "toPairs": lambda m: [[k, v] for k, v in m.items()],
    "fromPairs": lambda xs: {to_text(k): v for k, v in xs},
    "first": lambda xs: xs[0] if xs else None,
    "last": lambda xs: xs[-1] if xs else None,
    "take": lambda xs, n: list(xs[: _as_int(n)]),
    "concat": _concat,
    "flatten": _flatten,
    "uniq": _uniq,
    "join": _join,
    "split": _split,
    "splitAfter": lambda s, sep: [p + str(sep) for p in str(s).split(str(sep))[:-1]] + [str(s).split(str(sep))[-1]],
    "replace": lambda s, old, new: str(s).replace(str(old), str(new)),
    "repeat": lambda s, n: str(s) * _as_int(n),
    "indexOf": lambda s, sub: str(s).find(str(sub)),
    "lastIndexOf": lambda s, sub: str(s).rfind(str(sub)),
    "hasPrefix": lambda s, p: str(s).startswith(str(p)),
    "hasSuffix": lambda s, p: str(s).endswith(str(p)),
    "trim": lambda s, cut=None: str(s).strip() if cut is None else str(s).strip(str(cut)),
    "trimPrefix": lambda s, p=" ": str(s).removeprefix(str(p)),
    "trimSuffix": lambda s, p=" ": str(s).removesuffix(str(p)),
    "upper": lambda s: str(s).upper(),
    "lower": lambda s: str(s).lower(),
    "abs": lambda x: abs(_numbers((x,), "abs")[0]),
    "ceil": lambda x: float(math.ceil(_numbers((x,), "ceil")[0])),
    "floor": lambda x: float(math.floor(_numbers((x,), "floor")[0])),
    "round": lambda x: float(round(_numbers((x,), "round")[0])),
    "max": lambda *xs: max(_numbers(xs, "max")),
    "min": lambda *xs: min(_numbers(xs, "min")),
    "mean": lambda *xs: statistics.fmean(_numbers(xs, "mean")),
    "median": lambda *xs: statistics.median(_numbers(xs, "median")),
    "reverse": lambda xs: list(reversed(_items(xs, "reverse"))),
    "sort": lambda xs, order="asc": sorted(_items(xs, "sort"), reverse=order == "desc"),
}
FUNCTIONS.update({f"sprig.{name}": f for name, f in SPRIG.items()})
