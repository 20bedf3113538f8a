"""The three small expression languages an Argo manifest uses, with one tokenizer and one parser.

- ``when`` conditions (Argo evaluates them with govaluate after ``{{...}}`` substitution). A bare
  word is a *string* (Argo turns govaluate variables into strings so that ``heads == heads`` works),
  unless it reads as a number or ``true``/``false``. Operators: ``== != < > <= >= =~ !~ && || !``,
  ``in (a, b, ...)`` and parentheses.
- ``depends`` of a DAG task: task references (``A``, ``A.Succeeded``, ``A.AnySucceeded`` ...)
  joined by ``&& || !`` and parentheses.
- ``{{= ...}}``, ``valueFrom.expression``, hook and ``retryStrategy.expression`` (expr-lang): names
  are looked up in a nested context; member access (``.x``, ``?.x``, ``['x']``), calls, pipes
  (``x | f(y)`` is ``f(x, y)``), closures (``filter(xs, {# > 1})`` or ``filter(xs, # > 1)``, with
  ``.field`` for ``#.field``), list and map literals, ternary ``?:``, ``??``, ``in``/``not in``,
  ``matches``, ``contains``, ``startsWith``, ``endsWith``, arithmetic with ``**``, and
  ``and``/``or``/``not``. The function library is :mod:`exprfuncs`.

No ``eval``: a hand-written tokenizer and a Pratt parser build a tiny AST that is evaluated lazily
(``&&``/``||``/``?:``/``??`` only evaluate the branch they need).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class ExpressionError(ValueError):
    """A syntax or evaluation error; the message names the expression."""


class Mode(Enum):
    WHEN = "when"
    DEPENDS = "depends"
    EXPR = "expr"


# ---------------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # "op", "str", "num", "word", "name", "end"
    text: str
    value: Any = None
    pos: int = 0


_OPS = (
    "&&",
    "||",
    "==",
    "!=",
    "<=",
    ">=",
    "=~",
    "!~",
    "??",
    "?.",
    "**",
    "..",
    "<",
    ">",
    "!",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "?",
    ":",
    ".",
    "+",
    "-",
    "*",
    "/",
    "%",
    "|",
    "#",
)
_LOGIC_OPS = ("&&", "||", "!", "(", ")")
_MODE_OPS: dict[Mode, tuple[str, ...]] = {
    Mode.DEPENDS: _LOGIC_OPS,
    Mode.WHEN: (*_LOGIC_OPS, "==", "!=", "<=", ">=", "=~", "!~", "<", ">", ","),
    Mode.EXPR: _OPS,
}
_WHEN_WORD_STOP = set(" \t\r\n()!=<>&|'\",")
_NUM_RE = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_DEPENDS_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_EXPR_WORD_OPS = {"and": "&&", "or": "||", "not": "!"}


def _read_string(text: str, i: int) -> tuple[str, int]:
    quote = text[i]
    out: list[str] = []
    j = i + 1
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`"}
    while j < len(text):
        c = text[j]
        if c == "\\" and quote != "`" and j + 1 < len(text):
            out.append(escapes.get(text[j + 1], "\\" + text[j + 1]))
            j += 2
            continue
        if c == quote:
            return "".join(out), j + 1
        out.append(c)
        j += 1
    raise ExpressionError(f"unterminated string starting at column {i + 1}")


def tokenize(text: str, mode: Mode) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c in "'\"" or (c == "`" and mode is Mode.EXPR):
            value, j = _read_string(text, i)
            tokens.append(Token("str", text[i:j], value, i))
            i = j
            continue
        if mode is Mode.DEPENDS:
            m = _DEPENDS_RE.match(text, i)
            if m:
                tokens.append(Token("word", m.group(), m.group(), i))
                i = m.end()
                continue
        elif mode is Mode.EXPR:
            m = _NUM_RE.match(text, i)
            after_value = tokens and (tokens[-1].kind in ("name", "num") or tokens[-1].text in (")", "]"))
            if m and not (c == "." and after_value) and not text.startswith("..", i):
                num = m.group()
                if num.endswith(".") and text.startswith(".", m.end() - 1) and text.startswith("..", m.end() - 1):
                    num = num[:-1]  # 1..3 is a range, not 1. followed by .3
                tokens.append(Token("num", num, float(num) if any(x in num for x in ".eE") else int(num), i))
                i += len(num)
                continue
            m = _NAME_RE.match(text, i)
            if m:
                word = m.group()
                if word in _EXPR_WORD_OPS:
                    tokens.append(Token("op", _EXPR_WORD_OPS[word], None, i))
                else:
                    tokens.append(Token("name", word, word, i))
                i = m.end()
                continue
        else:  # WHEN: anything up to a space or an operator character is one word
            if c not in _WHEN_WORD_STOP:
                j = i
                while j < n and text[j] not in _WHEN_WORD_STOP:
                    j += 1
                tokens.append(Token("word", text[i:j], text[i:j], i))
                i = j
                continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is None or op not in _MODE_OPS[mode]:
            raise ExpressionError(f"unexpected character {c!r} at column {i + 1}")
        tokens.append(Token("op", op, None, i))
        i += len(op)
    tokens.append(Token("end", "", None, n))
    return tokens


# ---------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class ListLit:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapLit:
    items: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Ref:
    """A DAG task reference in ``depends``: ``task`` and the selector (``Succeeded`` ... or "")."""

    task: str
    selector: str


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Ternary:
    cond: Node
    then: Node
    other: Node


@dataclass(frozen=True)
class Member:
    obj: Node
    key: Node
    optional: bool = False  # ?. : nil instead of an error


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Closure:
    """A predicate for ``filter``/``map``/...: ``#`` is the element, ``.x`` is ``#.x``."""

    body: Node


Node = Lit | ListLit | MapLit | Name | Ref | Unary | Binary | Ternary | Member | Call | Closure

_BINARY_PREC: dict[str, int] = {
    "??": 1,
    "||": 2,
    "&&": 3,
    "==": 4,
    "!=": 4,
    "<": 4,
    ">": 4,
    "<=": 4,
    ">=": 4,
    "=~": 4,
    "!~": 4,
    "matches": 4,
    "contains": 4,
    "startsWith": 4,
    "endsWith": 4,
    "in": 4,
    "not in": 4,
    "..": 5,
    "+": 6,
    "-": 6,
    "*": 7,
    "/": 7,
    "%": 7,
    "**": 8,
}
# Functions whose arguments after the first are predicates (closures).
CLOSURE_FUNCS = frozenset(
    {
        "all",
        "any",
        "none",
        "one",
        "filter",
        "map",
        "count",
        "find",
        "findIndex",
        "findLast",
        "findLastIndex",
        "groupBy",
        "sortBy",
        "sum",
        "reduce",
    }
)
DEPENDS_SELECTORS = (
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
)


class _Parser:
    def __init__(self, text: str, mode: Mode) -> None:
        self.text = text
        self.mode = mode
        self.tokens = tokenize(text, mode)
        self.i = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.text == text

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.next()
        if tok.kind != "op" or tok.text != text:
            raise ExpressionError(f"expected {text!r} at column {tok.pos + 1}, got {tok.text or 'end'!r}")

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression")
        node = self.pipeline()
        tok = self.peek()
        if tok.kind != "end":
            raise ExpressionError(f"unexpected {tok.text!r} at column {tok.pos + 1}")
        return node

    def pipeline(self) -> Node:
        """``x | f(a)`` is ``f(x, a)``; pipes bind loosest."""
        node = self.expression(0)
        while self.mode is Mode.EXPR and self.at("|"):
            self.next()
            tok = self.next()
            if tok.kind != "name":
                raise ExpressionError(f"expected a function after '|' at column {tok.pos + 1}")
            func = tok.text
            while self.at(".") and self.peek(1).kind == "name":  # sprig.upper
                self.next()
                func += "." + self.next().text
            call = self.call(func, first=node) if self.at("(") else Call(func, (node,))
            node = call
        return node

    def _binary_op(self) -> str | None:
        tok = self.peek()
        if tok.kind == "op" and tok.text in _BINARY_PREC:
            return tok.text
        if self.mode is Mode.EXPR and tok.kind == "name" and tok.text in _BINARY_PREC:
            return tok.text
        if self.mode is Mode.EXPR and tok.kind == "op" and tok.text == "!":
            nxt = self.peek(1)
            if nxt.kind == "name" and nxt.text == "in":
                return "not in"
        if self.mode is Mode.WHEN and tok.kind == "word" and tok.text in ("in", "IN"):
            return "in"
        return None

    def expression(self, min_prec: int) -> Node:
        left = self.unary()
        while True:
            op = self._binary_op()
            if op is None:
                if self.mode is Mode.EXPR and min_prec == 0 and self.at("?"):
                    self.next()
                    then = self.expression(0)
                    self.expect(":")
                    other = self.expression(0)
                    left = Ternary(left, then, other)
                    continue
                return left
            prec = _BINARY_PREC[op]
            if prec <= min_prec and not (op == "**" and prec == min_prec):
                return left
            self.next()
            if op == "not in":
                self.next()
            if op == "in" and self.mode is Mode.WHEN:
                right = self.when_list()
            else:
                right = self.expression(prec if op != "**" else prec - 1)
            left = Binary(op, left, right)

    def when_list(self) -> Node:
        """govaluate's ``(a, b, c)`` after ``in``."""
        self.expect("(")
        items: list[Node] = []
        while not self.at(")"):
            items.append(self.expression(0))
            if not self.at(","):
                break
            self.next()
        self.expect(")")
        return ListLit(tuple(items))

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text == "!":
            self.next()
            return Unary("!", self.unary())
        if self.mode is Mode.EXPR and tok.kind == "op" and tok.text in ("-", "+"):
            self.next()
            return Unary(tok.text, self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Node:
        tok = self.next()
        if tok.kind == "op" and tok.text == "(":
            node = self.pipeline() if self.mode is Mode.EXPR else self.expression(0)
            self.expect(")")
            return node
        if tok.kind == "str":
            return Lit(tok.value)
        if self.mode is Mode.EXPR and tok.kind == "op":
            if tok.text == "[":
                items: list[Node] = []
                while not self.at("]"):
                    items.append(self.pipeline())
                    if not self.at(","):
                        break
                    self.next()
                self.expect("]")
                return ListLit(tuple(items))
            if tok.text == "{":
                pairs: list[tuple[Node, Node]] = []
                while not self.at("}"):
                    key_tok = self.next()
                    if key_tok.kind not in ("name", "str", "num"):
                        raise ExpressionError(f"expected a map key at column {key_tok.pos + 1}")
                    self.expect(":")
                    pairs.append((Lit(key_tok.value), self.pipeline()))
                    if not self.at(","):
                        break
                    self.next()
                self.expect("}")
                return MapLit(tuple(pairs))
            if tok.text == "#":
                return Name("#")
            if tok.text == "." and self.peek().kind == "name":  # .field inside a closure
                return Member(Name("#"), Lit(self.next().text))
        if tok.kind == "num":
            return Lit(tok.value)
        if tok.kind == "word":
            if self.mode is Mode.DEPENDS:
                task, _, selector = tok.text.rpartition(".") if "." in tok.text else (tok.text, "", "")
                if selector and selector not in DEPENDS_SELECTORS:
                    raise ExpressionError(
                        f"unknown result {selector!r} in {tok.text!r} (one of {', '.join(DEPENDS_SELECTORS)})"
                    )
                return Ref(task, selector)
            return Lit(_when_word(tok.text))
        if tok.kind == "name":
            if tok.text in ("true", "false"):
                return Lit(tok.text == "true")
            if tok.text in ("nil", "null"):
                return Lit(None)
            if self.at("("):
                return self.call(tok.text)
            return Name(tok.text)
        raise ExpressionError(f"unexpected {tok.text or 'end of expression'!r} at column {tok.pos + 1}")

    def call(self, func: str, first: Node | None = None) -> Node:
        self.expect("(")
        args: list[Node] = [first] if first is not None else []
        closure = func in CLOSURE_FUNCS
        if not self.at(")"):
            while True:
                if closure and args:
                    args.append(self.closure())
                else:
                    args.append(self.pipeline())
                if self.at(","):
                    self.next()
                    continue
                break
        self.expect(")")
        return Call(func, tuple(args))

    def closure(self) -> Node:
        if self.at("{"):
            self.next()
            body = self.pipeline()
            self.expect("}")
            return Closure(body)
        return Closure(self.pipeline())

    def postfix(self, node: Node) -> Node:
        if self.mode is not Mode.EXPR:
            return node
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text in (".", "?."):
                self.next()
                name = self.next()
                if name.kind != "name":
                    raise ExpressionError(f"expected a name after '.' at column {name.pos + 1}")
                if self.at("(") and isinstance(node, Name):
                    node = self.call(f"{node.name}.{name.text}")  # sprig.trim(...), strings.X(...)
                else:
                    node = Member(node, Lit(name.text), tok.text == "?.")
            elif tok.kind == "op" and tok.text == "[":
                self.next()
                key = self.pipeline()
                self.expect("]")
                node = Member(node, key)
            else:
                return node


def _when_word(word: str) -> Any:
    if word == "true":
        return True
    if word == "false":
        return False
    try:
        value = float(word)
    except ValueError:
        return word
    return value if math.isfinite(value) else word


def parse(text: str, mode: Mode) -> Node:
    try:
        return _Parser(text, mode).parse()
    except ExpressionError as exc:
        raise ExpressionError(f"{mode.value} expression {text.strip()!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------- evaluation


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("=~", "!~", "matches"):
        try:
            found = re.search(str(right), str(left)) is not None
        except re.error as exc:
            raise ExpressionError(f"bad regular expression {right!r}: {exc}") from None
        return found if op != "!~" else not found
    ln, rn = _num(left), _num(right)
    if ln is not None and rn is not None:
        left, right = ln, rn
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if type(left) is not type(right) or not isinstance(left, str | float):
        raise ExpressionError(f"cannot compare {left!r} {op} {right!r}")
    result: bool = {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
    return result


def _arith(op: str, left: Any, right: Any) -> Any:
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if op == "+" and isinstance(left, list) and isinstance(right, list):
        return left + right
    ln, rn = _num(left), _num(right)
    if ln is None or rn is None:
        raise ExpressionError(f"cannot compute {left!r} {op} {right!r}")
    both_int = isinstance(left, int) and isinstance(right, int)
    if op == "..":
        if not both_int:
            raise ExpressionError(f"a range needs integers, got {left!r}..{right!r}")
        return list(range(int(ln), int(rn) + 1))
    if op == "/":
        if rn == 0:
            raise ExpressionError("division by zero")
        return ln / rn
    if op == "**":
        return ln**rn
    if op == "%":
        if rn == 0:
            raise ExpressionError("integer divide by zero")
        result = math.fmod(ln, rn)
    else:
        result = {"+": ln + rn, "-": ln - rn, "*": ln * rn}[op]
    return int(result) if both_int else result


def _truthy(value: Any, text: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ExpressionError(f"expected a boolean, got {value!r}")


def to_text(value: Any) -> str:
    """How a value becomes a parameter string (Argo's convention: JSON for non-strings)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


class Evaluator:
    """Evaluates a parsed expression. ``context`` resolves names (EXPR mode); ``refs`` resolves
    DAG task references (DEPENDS mode)."""

    def __init__(
        self,
        mode: Mode,
        context: Mapping[str, Any] | None = None,
        refs: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.mode = mode
        self.context: Mapping[str, Any] = context or {}
        self.refs = refs
        self.element: list[Any] = []  # the closure element stack (``#``)

    def eval(self, node: Node) -> Any:
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, ListLit):
            return [self.eval(item) for item in node.items]
        if isinstance(node, MapLit):
            return {to_text(self.eval(k)): self.eval(v) for k, v in node.items}
        if isinstance(node, Ref):
            if self.refs is None:
                raise ExpressionError("task references are only valid in depends")
            return self.refs(node.task, node.selector)
        if isinstance(node, Name):
            if node.name == "#":
                if not self.element:
                    raise ExpressionError("'#' outside a closure")
                return self.element[-1]
            if node.name not in self.context:
                raise ExpressionError(f"unknown name {node.name!r}")
            return self.context[node.name]
        if isinstance(node, Member):
            return self._member(node)
        if isinstance(node, Unary):
            value = self.eval(node.operand)
            if node.op == "!":
                return not _truthy(value, "!")
            if _num(value) is None:
                raise ExpressionError(f"cannot negate {value!r}")
            return -value if node.op == "-" else value
        if isinstance(node, Ternary):
            return self.eval(node.then) if _truthy(self.eval(node.cond), "?") else self.eval(node.other)
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Closure):
            raise ExpressionError("a closure is only valid as a predicate argument")
        return self._binary(node)

    def _member(self, node: Member) -> Any:
        obj = self.eval(node.obj)
        key = self.eval(node.key)
        if obj is None and node.optional:
            return None
        try:
            if isinstance(obj, list | str) and not isinstance(key, bool):
                return obj[int(key)]
            if isinstance(obj, Mapping):
                if key not in obj:
                    if node.optional:
                        return None
                    raise KeyError(key)
                return obj[key]
        except (KeyError, IndexError, TypeError, ValueError):
            pass
        raise ExpressionError(f"no member {key!r}")

    def predicate(self, closure: Node) -> Callable[[Any], Any]:
        body = closure.body if isinstance(closure, Closure) else closure

        def run(element: Any) -> Any:
            self.element.append(element)
            try:
                return self.eval(body)
            finally:
                self.element.pop()

        return run

    def _call(self, node: Call) -> Any:
        from kaic.executor.exprfuncs import CLOSURE_FUNCTIONS, FUNCTIONS

        if node.func in CLOSURE_FUNCTIONS and node.func in CLOSURE_FUNCS:
            if not node.args:
                raise ExpressionError(f"{node.func}() needs arguments")
            collection = self.eval(node.args[0])
            preds = [self.predicate(a) for a in node.args[1:]]
            try:
                return CLOSURE_FUNCTIONS[node.func](collection, *preds)
            except ExpressionError:
                raise
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
                raise ExpressionError(f"{node.func}: {exc}") from None
        func = FUNCTIONS.get(node.func)
        if func is None:
            raise ExpressionError(f"unknown function {node.func!r}")
        args = [self.eval(a) for a in node.args]
        try:
            return func(*args)
        except ExpressionError as exc:
            raise ExpressionError(f"{node.func}: {exc}") from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError, OverflowError) as exc:
            raise ExpressionError(f"{node.func}: {exc}") from None

    def _binary(self, node: Binary) -> Any:
        op = node.op
        if op == "&&":
            return _truthy(self.eval(node.left), op) and _truthy(self.eval(node.right), op)
        if op == "||":
            return _truthy(self.eval(node.left), op) or _truthy(self.eval(node.right), op)
        if op == "??":
            try:
                left = self.eval(node.left)
            except ExpressionError:
                left = None
            return left if left is not None else self.eval(node.right)
        left, right = self.eval(node.left), self.eval(node.right)
        if op in ("+", "-", "*", "/", "%", "**", ".."):
            return _arith(op, left, right)
        if op == "contains":
            return str(right) in str(left) if isinstance(left, str) else right in left
        if op == "startsWith":
            return str(left).startswith(str(right))
        if op == "endsWith":
            return str(left).endswith(str(right))
        if op in ("in", "not in"):
            found = _contains(right, left)
            return found if op == "in" else not found
        return _compare(op, left, right)


def _contains(collection: Any, value: Any) -> bool:
    if isinstance(collection, Mapping):
        return value in collection
    if isinstance(collection, str):
        return str(value) in collection
    if isinstance(collection, list | tuple):
        return any(_compare("==", value, item) for item in collection)
    raise ExpressionError(f"'in' needs a list or map, got {collection!r}")


# ---------------------------------------------------------------------------------------------- entry points


def evaluate_when(text: str) -> bool:
    """Evaluate a substituted ``when`` string the way Argo's govaluate does."""
    node = parse(text, Mode.WHEN)
    try:
        result = Evaluator(Mode.WHEN).eval(node)
    except ExpressionError as exc:
        raise ExpressionError(f"when {text.strip()!r}: {exc}") from None
    if not isinstance(result, bool):
        raise ExpressionError(f"when {text.strip()!r}: expected a boolean, got {result!r}")
    return result


def evaluate_expr(text: str, context: Mapping[str, Any]) -> Any:
    """Evaluate an expr-lang expression against a nested context."""
    node = parse(text, Mode.EXPR)
    try:
        return Evaluator(Mode.EXPR, context).eval(node)
    except ExpressionError as exc:
        raise ExpressionError(f"expression {text.strip()!r}: {exc}") from None
    except RecursionError:
        raise ExpressionError(f"expression {text.strip()!r}: too deeply nested") from None


def parse_depends(text: str) -> Node:
    return parse(text, Mode.DEPENDS)


def depends_refs(node: Node) -> list[Ref]:
    """Every task reference in a parsed ``depends`` expression, in order."""
    out: list[Ref] = []

    def walk(n: Node) -> None:
        if isinstance(n, Ref):
            out.append(n)
        elif isinstance(n, Unary):
            walk(n.operand)
        elif isinstance(n, Binary):
            walk(n.left)
            walk(n.right)

    walk(node)
    return out


def evaluate_depends(node: Node, refs: Callable[[str, str], bool]) -> bool:
    return bool(Evaluator(Mode.DEPENDS, refs=refs).eval(node))

