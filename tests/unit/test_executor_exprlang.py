"""expr-lang as Argo documents it (closures, pipes, ??, in, concat/join/get, sprig, jsonpath) and
govaluate's ``in (...)`` for ``when``; run-time errors are ExpressionError with the message."""

from __future__ import annotations

from typing import Any

import pytest

from kaic.executor.expressions import ExpressionError, evaluate_expr, evaluate_when
from kaic.executor.templating import ABSENT, UnresolvedError, absent_ref, nested, substitute

pytestmark = pytest.mark.unit

CTX: dict[str, Any] = {
    "xs": [1, 2, 3, 4],
    "people": [{"name": "a", "age": 30}, {"name": "b", "age": 12}],
    "item": {"name": "first", "type": ""},
    "missing": None,
    "s": "Hello",
    "m": {"k": "v"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("filter(xs, {# > 2})", [3, 4]),
        ("filter(xs, # > 2)", [3, 4]),
        ("map(people, {.name})", ["a", "b"]),
        ("map(people, .age * 2)", [60, 24]),
        ("all(xs, # > 0)", True),
        ("any(xs, # > 3)", True),
        ("one(xs, # == 2)", True),
        ("none(xs, # > 9)", True),
        ("count(people, .age > 18)", 1),
        ("missing ?? 'fallback'", "fallback"),
        ("get(item, 'type') ?? 'always'", ""),
        ("get(item, 'nope') ?? 'always'", "always"),
        ("m.nope ?? 'x'", "x"),
        ("xs | filter(# % 2 == 0) | map(# * 10)", [20, 40]),
        ("'[\"a\",\"b\"]' | fromJSON() | join(',')", "a,b"),
        ("concat(['always'], 1 == 1 ? ['test'] : []) | toJSON()", '["always","test"]'),
        ("2 in xs", True),
        ("5 not in xs", True),
        ("'k' in m", True),
        ("s startsWith 'He' && s endsWith 'lo' && s contains 'ell'", True),
        ("s matches '^H.*o$'", True),
        ("upper(s) + lower('X')", "HELLOx"),
        ("len(xs) + 1", 5),
        ("2 ** 3", 8.0),
        ("1..3", [1, 2, 3]),
        ("{a: 1, 'b': [2]}.b[0]", 2),
        ("m?.k", "v"),
        ("missing?.k", None),
        ("sprig.upper('x')", "X"),
        ("sprig.trim('  y ')", "y"),
        ("sprig.default('d', '')", "d"),
        ("asInt('7') + asFloat('0.5')", 7.5),
        ("string(12)", "12"),
        ("jsonpath('{\"a\": {\"b\": [5, 6]}}', '$.a.b[1]')", 6),
        ("jsonpath('[{\"v\": 1}, {\"v\": 2}]', '$[*].v')", [1, 2]),
        ("sum(xs)", 10),
        ("first(xs) + last(xs)", 5),
        ("keys(m)", ["k"]),
    ],
)
def test_expr_lang(text: str, expected: Any) -> None:
    assert evaluate_expr(text, CTX) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("asInt('x')", "asInt"),
        ("nope(1)", "unknown function"),
        ("filter(3, # > 1)", "not a list"),
        ("1 / 0", "division by zero"),
        ("jsonpath('not json', '$.a')", "jsonpath"),
        ("xs[9]", "no member"),
        ("filter(xs, # + 1)", "not a boolean"),
    ],
)
def test_runtime_errors_are_expression_errors(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError, match=fragment):
        evaluate_expr(text, CTX)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"" in ("always","test","")', True),
        ('"second" in ("always","test")', False),
        ("always in (always, test)", True),
        ("3 in (1, 2, 3)", True),
        ('!("x" in ("a"))', True),
    ],
)
def test_govaluate_in(text: str, expected: bool) -> None:
    assert evaluate_when(text) is expected


def test_absent_optional_in_templates() -> None:
    scope = {"tasks.p.outputs.parameters.x": ABSENT, "y": "1"}
    with pytest.raises(UnresolvedError, match="absent optional"):
        substitute("{{tasks.p.outputs.parameters.x}}", scope)
    assert substitute("{{= tasks.p.outputs.parameters.x ?? 'dflt' }}", scope) == "dflt"
    assert nested(scope)["tasks"]["p"]["outputs"]["parameters"]["x"] is None
    assert absent_ref(" {{tasks.p.outputs.parameters.x}} ", scope)
    assert not absent_ref("a-{{tasks.p.outputs.parameters.x}}", scope)
    assert not absent_ref("{{y}}", scope)


def test_lenient_substitution_keeps_unknown_tags() -> None:
    assert substitute("v={{a.b}} {{y}}", {"y": "1"}, strict=False) == "v={{a.b}} 1"
