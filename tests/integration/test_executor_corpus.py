"""The Argo example corpus (../shared/fixtures/argo-examples, see its INDEX.md) run by the local
executor with real processes: final phases and the notable node outcomes INDEX.md documents.

Examples whose upstream timings are long (sleeps of 10-30 s, deadlines of 10-30 s) run with their
durations scaled down by textual replacements listed in SCALE; the semantics under test (deadline
kills, failFast off, parallelism limits, backoff caps) are unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kaic.errors import ConfigError
from kaic.executor import ExecutorOptions, NodeStatus, WorkflowResult, run_workflow
from kaic.executor.manifest import load_text
from tests.conftest import shared_path
from tests.executor_timing import max_overlap

pytestmark = pytest.mark.integration


def examples() -> Path:
    return shared_path("fixtures", "argo-examples")


def log(result: WorkflowResult, node: NodeStatus) -> str:
    path = result.run_dir / "nodes" / node.id / "stdout.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def pods(result: WorkflowResult) -> list[NodeStatus]:
    return [n for n in result.nodes.values() if n.type == "Pod"]


def by_display(result: WorkflowResult, display: str) -> list[NodeStatus]:
    return [n for n in result.nodes.values() if n.display_name == display]


def all_output(result: WorkflowResult) -> str:
    return "".join(log(result, n) for n in pods(result))


Check = Callable[[WorkflowResult], None]


@dataclass
class Case:
    phases: tuple[str, ...]  # the possible final phases
    nodes: dict[str, str] = field(default_factory=dict)  # display name -> phase
    check: Check | None = None
    scale: dict[str, str] = field(default_factory=dict)  # text replacements that shorten durations


def phase_of(result: WorkflowResult, display: str) -> str:
    found = by_display(result, display)
    assert found, f"no node {display!r}; have {sorted(n.display_name for n in result.nodes.values())}"
    return found[0].phase


def check_steps(r: WorkflowResult) -> None:
    (h1,) = by_display(r, "hello1")
    h2 = by_display(r, "hello2a") + by_display(r, "hello2b")
    assert all(n.started_mono >= h1.finished_mono for n in h2)
    assert sorted(log(r, n).strip() for n in h2) == ["hello2a", "hello2b"]


def check_diamond(r: WorkflowResult) -> None:
    a, b, c, d = (by_display(r, x)[0] for x in "ABCD")
    assert b.started_mono >= a.finished_mono
    assert c.started_mono >= a.finished_mono
    assert d.started_mono >= max(b.finished_mono, c.finished_mono)
    assert [log(r, n).strip() for n in (a, b, c, d)] == ["A", "B", "C", "D"]


def check_diamond_steps(r: WorkflowResult) -> None:
    outputs = sorted(log(r, n).strip() for n in pods(r))
    assert outputs == sorted(f"{x}{i}" for x in "ABCD" for i in (1, 2, 3))


def check_targets(r: WorkflowResult) -> None:
    assert sorted(n.display_name for n in pods(r)) == ["A", "C", "E"]


def check_output_parameter(r: WorkflowResult) -> None:
    assert log(r, by_display(r, "consume-parameter")[0]).strip() == "hello world"


def check_aggregation(r: WorkflowResult) -> None:
    assert log(r, by_display(r, "print-nums")[0]).strip() == '["1","2","3","4"]'
    divide = sorted(
        (n.display_name, n.phase) for n in r.nodes.values() if n.display_name.startswith("divide-by-2(")
    )
    assert [p for _, p in divide] == ["Skipped", "Succeeded", "Skipped", "Succeeded"]
    prints = sorted(log(r, n).strip() for n in r.nodes.values() if n.display_name.startswith("print("))
    assert prints == ["1", "2"]


def check_one_side_skipped(r: WorkflowResult) -> None:
    phases = sorted(phase_of(r, x) for x in ("heads", "tails"))
    assert phases == ["Skipped", "Succeeded"]


def check_conditional_parameters(r: WorkflowResult) -> None:
    flip = log(r, by_display(r, "flip-coin")[0]).strip()
    root = r.node(r.name)
    assert root is not None
    assert root.output("stepresult") == flip
    assert phase_of(r, flip) == "Succeeded"


def check_conditionals_complex(r: WorkflowResult) -> None:
    first = log(r, by_display(r, "flip-coin")[0]).strip()
    second = log(r, by_display(r, "flip-again")[0]).strip()
    assert phase_of(r, first) == "Succeeded"
    complex_runs = (first, second) in (("heads", "tails"), ("tails", "tails"))
    assert phase_of(r, "complex-condition") == ("Succeeded" if complex_runs else "Skipped")
    assert phase_of(r, "heads-regex") == ("Succeeded" if second == "heads" else "Skipped")
    assert phase_of(r, "tails-regex") == ("Succeeded" if second == "tails" else "Skipped")


def check_recursive_coinflip(r: WorkflowResult) -> None:
    flips = [log(r, n).strip() for n in by_display(r, "flip-coin")]
    assert flips[-1] == "heads"
    assert all(f == "tails" for f in flips[:-1])
    assert len(by_display(r, "heads")) == len(flips)  # one heads node (run or skipped) per level


def check_recursive_loop(r: WorkflowResult) -> None:
    counts = sorted(int(log(r, n)) for n in by_display(r, "iterate-counter"))
    assert counts == list(range(1, 11))
    continues = by_display(r, "continue")
    assert [n.phase for n in continues].count("Skipped") == 1


def check_status_reference(r: WorkflowResult) -> None:
    assert "the flakey container failed" in log(r, by_display(r, "failed")[0])


def check_loops(r: WorkflowResult) -> None:
    assert sorted(log(r, n).strip() for n in pods(r)) == ["goodbye world", "hello world"]


def check_loops_sequence(r: WorkflowResult) -> None:
    printed = sorted(log(r, n).strip() for n in pods(r))
    expected = (
        [str(i) for i in range(5)]
        + [str(i) for i in range(100, 106)]
        + ["200", "201", "202"]
        + [str(i) for i in range(5, -1, -1)]
        + [f"testuser{i:02X}" for i in range(5)]
    )
    assert printed == sorted(expected)


def check_sequential_loop(r: WorkflowResult) -> None:
    units = sorted((n for n in pods(r)), key=lambda n: n.started_mono)
    assert [log(r, n).strip() for n in units] == [
        "succeeds 1",
        "succeeds 2",
        "succeeds 3",
        "will fail and stop here",
    ]
    assert [n.phase for n in units] == ["Succeeded"] * 3 + ["Failed"]
    assert max_overlap(units) == 1
    root = r.node(r.name)
    assert root is not None
    assert root.message == "template has failed or errored children and failFast enabled"


def check_retry_container(r: WorkflowResult) -> None:
    attempts = [n for n in pods(r)]
    assert 1 <= len(attempts) <= 11
    if r.phase == "Succeeded":
        assert sorted(n.phase for n in attempts)[-1] == "Succeeded"
        assert sum(n.phase == "Succeeded" for n in attempts) == 1


def check_retry_on_error(r: WorkflowResult) -> None:
    assert 1 <= len(pods(r)) <= 3


def check_retry_conditional(r: WorkflowResult) -> None:
    assert log(r, by_display(r, "safe-to-retry")[0]).strip() == "true"
    attempts = [n for n in pods(r) if n.display_name.startswith("retry(")]
    assert 1 <= len(attempts) <= 11
    assert all(n.exit_code == "2" for n in attempts[:-1]) or len(attempts) == 11


def check_retry_backoff(r: WorkflowResult) -> None:
    attempts = sorted((n for n in pods(r)), key=lambda n: n.started_mono)
    gaps = [b.started_mono - a.finished_mono for a, b in itertools.pairwise(attempts)]
    expected = [min(0.1 * 2**i, 0.5) for i in range(len(gaps))]  # duration 0.1 s, factor 2, cap 0.5 s
    assert all(g >= e * 0.9 for g, e in zip(gaps, expected, strict=True))


def check_exit_handlers(r: WorkflowResult) -> None:
    assert "boohoo!" in log(r, by_display(r, "cry")[0])
    notify = log(r, by_display(r, "notify")[0])
    assert f"send e-mail: {r.name} Failed" in notify
    assert "templateName:intentional-fail" in notify  # {{workflow.failures}}, quotes eaten by sh


def check_step_hooks(r: WorkflowResult) -> None:
    hooks = [n for n in r.nodes.values() if n.display_name.endswith(".onExit")]
    assert sorted(n.display_name for n in hooks) == ["hello1.onExit", "hello2a.onExit", "hello2b.onExit"]
    assert all(log(r, n).strip() == "step cleanup" and n.phase == "Succeeded" for n in hooks)


def check_dag_hooks(r: WorkflowResult) -> None:
    hooks = [n for n in r.nodes.values() if n.display_name.endswith(".onExit")]
    assert len(hooks) == 4
    assert all(log(r, n).strip() == "task cleanup" for n in hooks)


def check_hook_with_param(r: WorkflowResult) -> None:
    (hook,) = by_display(r, "step-1.onExit")
    assert log(r, hook).strip() == "hello world"


def check_exit_code_variable(r: WorkflowResult) -> None:
    assert log(r, by_display(r, "echo-container")[0]).strip() == "Exit code was: 123"


def check_timeouts_step(r: WorkflowResult) -> None:
    (pod,) = pods(r)
    assert "123" in log(r, pod)
    assert 1.5 <= pod.finished_mono - pod.started_mono < 10


def check_timeouts_workflow(r: WorkflowResult) -> None:
    assert len(pods(r)) == 6
    assert all(n.phase == "Failed" and n.message == "Step exceeded its deadline" for n in pods(r))


def check_parallelism_limit(r: WorkflowResult) -> None:
    assert len(pods(r)) == 10
    assert max_overlap(pods(r)) == 2


def check_parallelism_nested(r: WorkflowResult) -> None:
    assert len(pods(r)) == 16
    for worker in by_display(r, "parallel-worker(0:1)") + by_display(r, "parallel-worker(1:2)"):
        jobs = [r.nodes[c] for g in worker.children for c in r.nodes[g].children]
        assert len(jobs) == 4
        assert max_overlap(jobs) == 1
    assert max_overlap(pods(r)) == 4


def check_loops_param_result(r: WorkflowResult) -> None:
    sleeps = [n for n in pods(r) if n.display_name.startswith("sleep(")]
    assert len(sleeps) == 11
    assert max_overlap(sleeps) >= 2


def check_dag_disable_fail_fast(r: WorkflowResult) -> None:
    assert len(by_display(r, "C")) == 1
    assert len([n for n in pods(r) if n.display_name.startswith("C(")]) == 4


def check_scripts_bash(r: WorkflowResult) -> None:
    value = int(log(r, by_display(r, "generate")[0]))
    assert 1 <= value <= 100
    assert log(r, by_display(r, "print")[0]).strip() == f"result was: {value}"


def check_prints(text: str) -> Check:
    def check(r: WorkflowResult) -> None:
        assert text in all_output(r)

    return check


CASES: dict[str, Case] = {
    "hello-world": Case(("Succeeded",), check=check_prints("hello world")),
    "global-parameters": Case(("Succeeded",), check=check_prints("hello world")),
    "steps": Case(
        ("Succeeded",), {"hello1": "Succeeded", "hello2a": "Succeeded", "hello2b": "Succeeded"}, check_steps
    ),
    "dag-diamond": Case(("Succeeded",), check=check_diamond),
    "dag-diamond-steps": Case(("Succeeded",), check=check_diamond_steps),
    "dag-targets": Case(("Succeeded",), check=check_targets),
    "dag-enhanced-depends": Case(
        ("Succeeded",),
        {
            "A": "Succeeded",
            "B": "Succeeded",
            "C": "Failed",
            "should-execute-1": "Succeeded",
            "should-execute-2": "Succeeded",
            "should-execute-3": "Succeeded",
            "should-not-execute": "Omitted",
        },
    ),
    "dag-continue-on-fail": Case(
        ("Failed",),
        {
            "A": "Succeeded",
            "B": "Failed",
            "C": "Succeeded",
            "D": "Succeeded",
            "E": "Failed",
            "F": "Succeeded",
            "G": "Omitted",
        },
    ),
    "dag-disable-failFast": Case(
        ("Failed",),
        {"A": "Succeeded", "B": "Succeeded", "C": "Failed", "D": "Succeeded", "E": "Succeeded"},
        check_dag_disable_fail_fast,
        scale={"sleep 30": "sleep 2"},
    ),
    "dag-task-level-timeout": Case(
        ("Failed",),
        {"A": "Succeeded", "B": "Failed", "C": "Succeeded"},
        scale={'"15s"': '"2s"', "20s": "5s", "10s": "1s"},
    ),
    "output-parameter": Case(("Succeeded",), check=check_output_parameter),
    "parameter-aggregation-dag": Case(("Succeeded",), check=check_aggregation),
    "conditional-parameters": Case(("Succeeded",), check=check_conditional_parameters),
    "expression-destructure-json": Case(("Succeeded",), check=check_prints("123")),
    "coinflip": Case(("Succeeded",), check=check_one_side_skipped),
    "coinflip-recursive": Case(("Succeeded",), check=check_recursive_coinflip),
    "conditionals-complex": Case(("Succeeded",), check=check_conditionals_complex),
    "recursive-for-loop": Case(("Succeeded",), check=check_recursive_loop),
    "status-reference": Case(
        ("Succeeded",),
        {"flakey-container": "Failed", "failed": "Succeeded", "succeeded": "Skipped"},
        check_status_reference,
    ),
    "loops": Case(("Succeeded",), check=check_loops),
    "loops-sequence": Case(("Succeeded",), check=check_loops_sequence),
    "loops-param-result": Case(
        ("Succeeded",),
        check=check_loops_param_result,
        scale={"sleep {{inputs.parameters.seconds}}": "sleep 0.{{inputs.parameters.seconds}}"},
    ),
    "loops-arbitrary-sequential-steps": Case(("Failed",), check=check_sequential_loop),
    "withsequence-nested-result": Case(("Succeeded",)),
    "retry-container": Case(("Succeeded", "Failed"), check=check_retry_container),
    "retry-backoff": Case(
        ("Succeeded", "Failed"),
        check=check_retry_backoff,
        scale={
            'duration: "1"': 'duration: "0.1"',
            'cap: "5"': 'cap: "0.5"',
            'maxDuration: "1m"': 'maxDuration: "4s"',
        },
    ),
    "retry-on-error": Case(("Succeeded", "Failed"), check=check_retry_on_error),
    "retry-conditional": Case(
        ("Failed",), {"safe-to-retry": "Succeeded", "retry": "Failed"}, check_retry_conditional
    ),
    "exit-handlers": Case(
        ("Failed",), {"notify": "Succeeded", "celebrate": "Skipped", "cry": "Succeeded"}, check_exit_handlers
    ),
    "exit-handler-step-level": Case(("Succeeded",), check=check_step_hooks),
    "exit-handler-dag-level": Case(("Succeeded",), check=check_dag_hooks),
    "exit-handler-with-param": Case(("Succeeded",), check=check_hook_with_param),
    "continue-on-fail": Case(
        ("Succeeded",), {"A": "Succeeded", "B": "Succeeded", "C": "Failed", "D": "Succeeded"}
    ),
    "exit-code-output-variable": Case(
        ("Succeeded",), {"failing-container": "Failed"}, check_exit_code_variable
    ),
    "timeouts-step": Case(
        ("Failed",),
        check=check_timeouts_step,
        scale={"activeDeadlineSeconds: 10": "activeDeadlineSeconds: 2"},
    ),
    "timeouts-workflow": Case(
        ("Failed",),
        check=check_timeouts_workflow,
        scale={"activeDeadlineSeconds: 30": "activeDeadlineSeconds: 2"},
    ),
    "parallelism-limit": Case(("Succeeded",), check=check_parallelism_limit, scale={"sleep 10": "sleep 0.3"}),
    "parallelism-nested": Case(
        ("Succeeded",), check=check_parallelism_nested, scale={"sleep 10": "sleep 0.3"}
    ),
    "scripts-bash": Case(("Succeeded",), check=check_scripts_bash),
}

# Refused up front (exit 2), with the field that makes it unsupported.
REFUSED: dict[str, str] = {
    "suspend-template": "spec.templates[approve].suspend: an indefinite suspend (no duration)",
}


def test_every_corpus_file_is_covered() -> None:
    names = {p.stem for p in examples().glob("*.yaml")}
    assert names == set(CASES) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(CASES))
def test_example(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    text = (examples() / f"{name}.yaml").read_text(encoding="utf-8")
    for old, new in case.scale.items():
        assert old in text, f"scaling {old!r} no longer applies to {name}"
        text = text.replace(old, new)
    result = run_workflow(load_text(text, f"{name}.yaml"), {}, ExecutorOptions(kaic_home=tmp_path / "home"))
    assert result.phase in case.phases, f"{name}: {result.phase} ({result.message})"
    for display, phase in case.nodes.items():
        assert phase_of(result, display) == phase, f"{name}: node {display}"
    if case.check is not None:
        case.check(result)
    assert (result.run_dir / "status.json").exists()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_example(name: str) -> None:
    text = (examples() / f"{name}.yaml").read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        run_workflow(load_text(text, f"{name}.yaml"), {}, ExecutorOptions())
    assert REFUSED[name] in str(info.value)
