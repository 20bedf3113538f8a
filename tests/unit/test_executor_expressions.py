"""The local executor's expression languages: govaluate-like `when`, DAG `depends`, expr-lang."""

from __future__ import annotations

import pytest

from kaic.executor.expressions import (
    ExpressionError,
    Ref,
    depends_refs,
    evaluate_depends,
    evaluate_expr,
    evaluate_when,
    parse_depends,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("heads == heads", True),
        ("heads == tails", False),
        ("Failed != Succeeded", True),
        ("5 < 10", True),
        ("10 < 10", False),
        ("10 <= 10", True),
        ("2.5 >= 3", False),
        ("9 < 10", True),  # numeric, not lexicographic
        ("'a b' == 'a b'", True),
        ('"x" != x', False),
        ("true == true", True),
        ("heads =~ hea", True),
        ("tails =~ hea", False),
        ("tails !~ hea", True),
        ("( heads == heads && tails == tails ) || ( a == b )", True),
        ("(heads == tails && a == a) || (b == c)", False),
        ("!(a == b)", True),
        ("a == a && !(b == c) || x == y", True),
        ("even == even", True),
        ("1 == 1.0", True),
    ],
)
def test_when_evaluates_like_govaluate(text: str, expected: bool) -> None:
    assert evaluate_when(text) is expected


@pytest.mark.parametrize("text", ["a ==", "(a == b", "a == b)", "a = b", "", "a & b", "'open == x"])
def test_when_syntax_errors_name_the_expression(text: str) -> None:
    with pytest.raises(ExpressionError, match="when"):
        evaluate_when(text)


def test_when_must_be_boolean() -> None:
    with pytest.raises(ExpressionError, match="expected a boolean"):
        evaluate_when("heads")


def test_depends_references_and_selectors() -> None:
    node = parse_depends("A && (C.Succeeded || C.Failed) || !should-execute-2.AnySucceeded")
    assert depends_refs(node) == [
        Ref("A", ""),
        Ref("C", "Succeeded"),
        Ref("C", "Failed"),
        Ref("should-execute-2", "AnySucceeded"),
    ]


def test_depends_evaluates_with_a_resolver() -> None:
    phases = {"A": "Succeeded", "B": "Failed"}

    def resolve(task: str, selector: str) -> bool:
        return phases[task] == (selector or "Succeeded")

    assert evaluate_depends(parse_depends("A && B.Failed"), resolve) is True
    assert evaluate_depends(parse_depends("A && B"), resolve) is False
    assert evaluate_depends(parse_depends("!A || B.Succeeded"), resolve) is False


@pytest.mark.parametrize("text", ["A.Finished", "A &&", "A B", "(A || B"])
def test_depends_errors(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_depends(text)


def test_expr_ternary_is_lazy() -> None:
    context = {
        "steps": {"flip-coin": {"outputs": {"result": "heads"}}, "heads": {"outputs": {"result": "H"}}}
    }
    text = (
        "steps['flip-coin'].outputs.result == 'heads'"
        " ? steps.heads.outputs.result : steps.tails.outputs.result"
    )
    assert evaluate_expr(text, context) == "H"  # steps.tails does not exist and is never looked at


def test_expr_jsonpath_and_functions() -> None:
    context = {"workflow": {"parameters": {"config": '{"a": "1", "b": {"c": [5, 6]}}'}}}
    assert evaluate_expr("jsonpath(workflow.parameters.config, '$.a')", context) == "1"
    assert evaluate_expr("jsonpath(workflow.parameters.config, '$.b.c[1]')", context) == 6
    assert evaluate_expr("asInt('41') + 1", {}) == 42
    assert evaluate_expr("sprig.trim('  x ')", {}) == "x"
    assert evaluate_expr("toJson([1, 'a'])", {}) == '[1,"a"]'


def test_expr_retry_expression_from_the_examples() -> None:
    text = (
        'asInt(lastRetry.exitCode) > 1 && lastRetry.status != "Error" && asInt(lastRetry.duration) < 120 '
        "&& (true == true || lastRetry.message matches 'imminent node shutdown|pod deleted')"
    )
    last = {"exitCode": "2", "status": "Failed", "duration": "1", "message": ""}
    assert evaluate_expr(text, {"lastRetry": last}) is True
    assert evaluate_expr(text, {"lastRetry": {**last, "exitCode": "1"}}) is False


def test_expr_unknown_name_and_function() -> None:
    with pytest.raises(ExpressionError, match="unknown name 'nope'"):
        evaluate_expr("nope == 1", {})
    with pytest.raises(ExpressionError, match="unknown function"):
        evaluate_expr("os.system('x')", {})
