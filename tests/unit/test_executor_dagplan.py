"""Pure DAG decisions: depends results, omitted-branch phases, and the DAG's verdict."""

from __future__ import annotations

import pytest

from kaic.executor.dagplan import (
    ContinueOn,
    Outcome,
    assess,
    dependency_names,
    depends_of,
    leaves,
    needed,
    ref_value,
)
from kaic.executor.dagplan import should_run as run_if

pytestmark = pytest.mark.unit

# dag-continue-on-fail: B and E fail; D = "B.Failed && C"; G = "E && F".
DEPS = {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"], "E": ["A"], "F": ["A"], "G": ["E", "F"]}


def test_plain_reference_means_succeeded_or_skipped() -> None:
    assert ref_value(Outcome("Succeeded"), "", ContinueOn()) is True
    assert ref_value(Outcome("Skipped"), "", ContinueOn()) is True
    assert ref_value(Outcome("Failed"), "", ContinueOn()) is False
    assert ref_value(Outcome("Failed"), "", ContinueOn(failed=True)) is True
    assert ref_value(Outcome("Omitted"), "", ContinueOn()) is False
    assert ref_value(Outcome("Error"), "Errored", ContinueOn()) is True


def test_fan_out_selectors() -> None:
    mixed = Outcome("Failed", ("Succeeded", "Failed"))
    assert ref_value(mixed, "AnySucceeded", ContinueOn()) is True
    assert ref_value(mixed, "AllFailed", ContinueOn()) is False
    assert ref_value(Outcome("Failed", ("Failed", "Error")), "AllFailed", ContinueOn()) is True


def test_dependencies_list_means_and() -> None:
    expr = depends_of({"dependencies": ["A", "B"]})
    assert dependency_names(expr) == ["A", "B"]
    assert run_if(expr, {"A": Outcome("Succeeded"), "B": Outcome("Failed")}, {}) is False
    assert run_if(None, {}, {}) is True


def test_continue_on_fail_dag_fails_through_the_omitted_leaf() -> None:
    outcomes = {
        n: Outcome(p)
        for n, p in {
            "A": "Succeeded",
            "B": "Failed",
            "C": "Succeeded",
            "D": "Succeeded",
            "E": "Failed",
            "F": "Succeeded",
            "G": "Omitted",
        }.items()
    }
    assert leaves(list(DEPS), DEPS) == ["D", "G"]
    assert assess(["D", "G"], outcomes, DEPS, {}, fail_fast=True) == "Failed"


def test_handled_failure_does_not_fail_the_dag() -> None:
    # dag-enhanced-depends: C fails, but every leaf succeeded.
    deps = {
        "A": [],
        "B": ["A"],
        "C": ["A"],
        "x1": ["A", "C"],
        "x2": ["B", "C"],
        "no": ["B", "C"],
        "x3": ["x2", "no"],
    }
    phases = {
        "A": "Succeeded",
        "B": "Succeeded",
        "C": "Failed",
        "x1": "Succeeded",
        "x2": "Succeeded",
        "no": "Omitted",
        "x3": "Succeeded",
    }
    outcomes = {n: Outcome(p) for n, p in phases.items()}
    assert leaves(list(deps), deps) == ["x1", "x3"]
    assert assess(["x1", "x3"], outcomes, deps, {}, fail_fast=True) == "Succeeded"


def test_fail_fast_decides_early_but_not_without_it() -> None:
    deps = {"A": [], "B": ["A"], "C": ["A"], "D": ["B"], "E": ["D"]}
    partial = {"A": Outcome("Succeeded"), "C": Outcome("Failed")}
    assert assess(["C", "E"], partial, deps, {}, fail_fast=True) == "Failed"
    assert assess(["C", "E"], partial, deps, {}, fail_fast=False) == "Running"


def test_continue_on_target_is_not_a_failure() -> None:
    outcomes = {"A": Outcome("Failed")}
    assert assess(["A"], outcomes, {"A": []}, {"A": ContinueOn(failed=True)}, fail_fast=True) == "Succeeded"


def test_targets_pull_in_their_dependencies() -> None:
    deps = {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"], "E": ["C"]}
    assert needed(["E"], deps) == {"A", "C", "E"}
