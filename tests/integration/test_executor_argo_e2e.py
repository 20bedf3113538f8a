"""Argo's own e2e corpus (../shared/fixtures/argo-e2e, see its README.md) run by the local executor
with real processes, judged by EXPECTED.tsv: the final phase it names, and the node outcomes,
outputs and messages that Argo's Go tests assert (cited per case).

A file may be refused (exit 2, one line) only where EXPECTED.tsv says a cluster is needed and the
refusal names that feature. Long sleeps and deadlines are scaled down by textual replacements
(SCALE); what is under test (deadline kills, parallelism, backoff limits) is unchanged.
"""

from __future__ import annotations

import itertools
import re
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

Check = Callable[[WorkflowResult], None]

# What only a cluster has; a refusal must name one of these.
CLUSTER_ONLY = re.compile(
    r"resource templates|http templates|data templates|volume|daemon|s3 artifacts|indefinite suspend|bucket"
)


def corpus() -> Path:
    return shared_path("fixtures", "argo-e2e")


def oracle() -> dict[str, str]:
    """EXPECTED.tsv: file stem -> Argo's expected outcome (free text, phase first)."""
    rows = (line.split("\t", 1) for line in (corpus() / "EXPECTED.tsv").read_text(encoding="utf-8").splitlines())
    return {name.removesuffix(".yaml"): text for name, text in rows}


def expected_phase(text: str) -> str:
    """The phase EXPECTED.tsv names ("refuse" for a refusal)."""
    word = re.match(r"\s*(\w+)", text)
    assert word, text
    return word.group(1)


def refusal_allowed(text: str) -> bool:
    return text.startswith("refuse") or "refuse OK" in text


# ---------------------------------------------------------------------------------------------- helpers


def log(r: WorkflowResult, node: NodeStatus) -> str:
    path = r.run_dir / "nodes" / node.id / "stdout.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def by_display(r: WorkflowResult, display: str) -> list[NodeStatus]:
    return [n for n in r.nodes.values() if n.display_name == display]


def one(r: WorkflowResult, display: str) -> NodeStatus:
    found = by_display(r, display)
    assert len(found) == 1, f"{display!r}: {len(found)} nodes; have {sorted(n.display_name for n in r.nodes.values())}"
    return found[0]


def by_name(r: WorkflowResult, name: str) -> NodeStatus:
    found = [n for n in r.nodes.values() if n.name == name]
    assert found, f"no node named {name!r}"
    return found[0]


def root(r: WorkflowResult) -> NodeStatus:
    return by_name(r, r.name)


def pods(r: WorkflowResult) -> list[NodeStatus]:
    return [n for n in r.nodes.values() if n.type == "Pod"]


def inputs(node: NodeStatus) -> dict[str, str]:
    return {p["name"]: p["value"] for p in node.inputs}


def phases(**expected: str) -> Check:
    def check(r: WorkflowResult) -> None:
        for display, phase in expected.items():
            assert one(r, display.replace("_", "-")).phase == phase, display

    return check


def all_of(*checks: Check) -> Check:
    def check(r: WorkflowResult) -> None:
        for c in checks:
            c(r)

    return check


def prints(display: str, text: str) -> Check:
    def check(r: WorkflowResult) -> None:
        assert log(r, one(r, display)).strip() == text

    return check


def error_node_says(display: str | None, text: str) -> Check:
    """A node (by display name, or any) is Error with ``text`` in its message."""

    def check(r: WorkflowResult) -> None:
        nodes = [one(r, display)] if display else [n for n in r.nodes.values() if n.phase == "Error"]
        assert any(n.phase == "Error" and text in n.message for n in nodes), [(n.name, n.message) for n in nodes]

    return check


def node_count(count: int) -> Check:
    def check(r: WorkflowResult) -> None:
        assert len(r.nodes) == count, sorted(n.name for n in r.nodes.values())

    return check


def message(text: str) -> Check:
    def check(r: WorkflowResult) -> None:
        assert text in r.message
        assert text in root(r).message

    return check


# ---------------------------------------------------------------------------------------------- cases


def check_conditionals(r: WorkflowResult) -> None:  # TestWhenExpressions
    for display in ("print-hello-govaluate", "print-hello-expr", "print-hello-expr-json"):
        node = one(r, display)
        assert node.type != "Skipped", display
        assert node.phase == "Succeeded", display


def check_dag_empty_param(r: WorkflowResult) -> None:  # TestDAGEmptyParam
    assert len(r.nodes) == 3
    sleep = one(r, "sleep")
    assert (sleep.phase, sleep.message) == ("Skipped", "Skipped, empty params")


def check_loops_empty_param(r: WorkflowResult) -> None:  # TestLoopEmptyParam
    assert len(r.nodes) == 5
    sleep = one(r, "sleep")
    assert (sleep.phase, sleep.message) == ("Skipped", "Skipped, empty params")


def check_consumer_input(value: str, display: str = "consumer") -> Check:
    def check(r: WorkflowResult) -> None:
        node = one(r, display)
        assert node.phase == "Succeeded"
        assert inputs(node) == {"in": value}
        assert log(r, node).strip() == f"consumer got: [{value}]"

    return check


def check_skipped_withparam_default(r: WorkflowResult) -> None:
    assert one(r, "producer").phase == "Skipped"
    for display, value in (("consumer(0:a)", "a"), ("consumer(1:b)", "b")):
        node = one(r, display)
        assert node.phase == "Succeeded"
        assert inputs(node) == {"in": value}


def check_dag_targets(r: WorkflowResult) -> None:
    """target E (a workflow parameter) depends on A and C only: B and D never run."""
    assert sorted(n.display_name for n in pods(r)) == ["A", "C", "E"]
    assert all(n.phase == "Succeeded" for n in pods(r))


def check_global_outputs(r: WorkflowResult) -> None:
    """The globalName parameter and artifact reach the consumers in the body and in onExit."""
    consumers = [n for n in pods(r) if n.display_name in ("consume-global-param", "consume-global-art")]
    assert len(consumers) == 4
    assert sum(n.name.startswith(f"{r.name}.onExit") for n in consumers) == 2
    assert all(n.phase == "Succeeded" and log(r, n).strip() == "hello world" for n in consumers)


def check_continue_on_fail(r: WorkflowResult) -> None:  # TestContinueOnFail
    assert len(r.nodes) == 7
    b = one(r, "B")
    assert b.phase == "Failed"
    assert len(b.children) == 1
    assert len(b.outbound_nodes) == 1


def check_item_in_sprig(r: WorkflowResult) -> None:  # TestItemInSprigExpr
    node = one(r, "print-message-loop(0:example)")
    assert inputs(node) == {"message": "EXAMPLE"}


def check_param_limit(r: WorkflowResult) -> None:  # TestParametrizableLimit
    assert "No more retries left" in root(r).message
    assert len(r.nodes) == 3


def check_retry_backoff(r: WorkflowResult) -> None:  # TestRetryBackoff
    assert len(r.nodes) <= 10
    attempts = sorted(pods(r), key=lambda n: n.started_mono)
    gaps = [b.started_mono - a.finished_mono for a, b in itertools.pairwise(attempts)]
    assert all(g >= 0.9 for g in gaps)  # backoff.duration (scaled to 1 s), no factor: a constant wait


def check_retry_limit(r: WorkflowResult) -> None:  # TestRetryLimit
    assert r.message == "No more retries left"
    top = root(r)
    assert (top.type, top.phase) == ("Retry", "Failed")
    assert by_name(r, f"{r.name}(0)").phase == "Failed"


def check_memo_hit(r: WorkflowResult) -> None:  # TestStepsMemoize...: some node is a memo hit
    hits = [n for n in r.nodes.values() if n.memoization and n.memoization["hit"]]
    assert [n.display_name for n in hits] == ["hello2a"]
    assert hits[0].output("output") == "hello1"


def check_json_variables(r: WorkflowResult) -> None:  # TestJSONVariables
    (pod,) = pods(r)
    assert log(r, pod).strip() == "myLabelValue myAnnotationValue myParamValue"


def check_missing_steps(r: WorkflowResult) -> None:  # TestMissingStepsInUI
    node = by_name(r, "missing-steps[0].step1[0].execute-script")
    assert len(node.children) == 1


def check_param_aggregation(r: WorkflowResult) -> None:  # TestParameterAggregation
    assert one(r, "print(0:res:1)").phase == "Succeeded"


def check_param_aggregation_fromoutputs(r: WorkflowResult) -> None:  # TestParameterAggregationFromOutputs
    names = {n.display_name for n in r.nodes.values()}
    assert {"task3(0:key1:value1)", "task3(1:key5:value5)"} <= names


def check_parallelism_limit(r: WorkflowResult) -> None:
    assert len(pods(r)) == 10
    assert max_overlap(pods(r)) == 2


def check_aggregation_with_retry(r: WorkflowResult) -> None:  # TestParameterAggregation*WithRetry
    node = one(r, f"{r.name}(0)")  # spec.retryStrategy wraps the entrypoint in a Retry node
    assert node.phase == "Succeeded"
    assert [p["value"] for p in node.parameters] == ['["1","2","3"]']


def check_retry_on_error_workflow(r: WorkflowResult) -> None:  # TestWorkflowLevelErrorRetryPolicy
    assert root(r).type == "Retry"
    assert len(pods(r)) == 1  # retryPolicy OnError does not retry a Failed pod


def check_steps_when_filter(r: WorkflowResult) -> None:
    for i, name in enumerate(("first", "second", "third", "fourth")):
        (node,) = [n for n in r.nodes.values() if n.display_name.startswith(f"fst({i}:")]
        assert node.phase == "Succeeded", node.display_name
        assert log(r, node).strip() == f'{name}["always","test"]'


def check_hooks_wf_level(r: WorkflowResult) -> None:  # HooksSuite.TestWorkflowLevelHooksSuccessVersion
    for suffix in (".hooks.running", ".hooks.succeed"):
        (hook,) = [n for n in r.nodes.values() if n.name.endswith(suffix)]
        assert hook.phase == "Succeeded", suffix


def check_items_with_hooks(r: WorkflowResult) -> None:
    group = by_name(r, f"{r.name}.run-sim")
    assert group.type == "TaskGroup"
    hooks = sorted(n.name.removeprefix(group.name) for n in r.nodes.values() if n.name.startswith(group.name + "."))
    assert hooks == [".hooks.running", ".onExit"]
    assert all(by_name(r, group.name + h).phase == "Succeeded" for h in hooks)
    assert log(r, by_name(r, group.name + ".onExit")).strip() == "I am a hook bar"


def check_workflow_hook_parameter(r: WorkflowResult) -> None:
    handler = by_name(r, f"{r.name}.onExit")
    assert handler.phase == "Succeeded"
    assert inputs(handler) == {"ternary": "Succeeded", "status": "Succeeded"}


def check_dag_fail(r: WorkflowResult) -> None:
    assert one(r, "C").phase == "Failed"
    assert one(r, "D").phase == "Omitted"


def check_exit_missing_output(r: WorkflowResult) -> None:  # expectedfailures/exit-handler-fail-missing-output
    hook = one(r, "step1.onExit")
    assert hook.phase == "Succeeded"
    assert inputs(hook)["hello-param"] == "{{steps.step1.outputs.parameters.hello-param}}"


def check_exit_handlers(r: WorkflowResult) -> None:
    assert one(r, "celebrate").phase == "Skipped"
    assert one(r, "cry").phase == "Succeeded"
    assert by_name(r, f"{r.name}.onExit").phase == "Succeeded"


def check_output_artifact_not_optional(r: WorkflowResult) -> None:
    (pod,) = pods(r)
    assert pod.phase == "Error"


def check_step_fail_fast(r: WorkflowResult) -> None:
    assert by_name(r, f"{r.name}[0]").phase == "Failed"
    assert one(r, "step1").phase == "Failed"
    assert one(r, "step2").phase == "Succeeded"


def check_timeouts_workflow(r: WorkflowResult) -> None:
    assert r.message == "Workflow exceeded its deadline"
    assert all(n.phase == "Failed" for n in pods(r))


def check_containerset(r: WorkflowResult) -> None:
    (container,) = [n for n in r.nodes.values() if n.type == "Container"]
    assert (container.display_name, container.phase) == ("a", "Failed")


def check_mutex(r: WorkflowResult) -> None:
    for prefix in ("synchronization-acquire-lock(", "synchronization-acquire-lock-1("):
        same_lock = [n for n in pods(r) if n.display_name.startswith(prefix)]
        assert len(same_lock) == 2
        assert max_overlap(same_lock) == 1  # one mutex: never two at once


@dataclass
class Case:
    check: Check | None = None
    scale: dict[str, str] = field(default_factory=dict)
    phase: str | None = None  # overrides EXPECTED.tsv, with the reason in a comment


CASES: dict[str, Case] = {
    "artifact-passing": Case(prints("consume-artifact", "hello world")),
    "conditionals": Case(check_conditionals),
    "dag-depends": Case(
        phases(should_execute_1="Succeeded", should_execute_2="Succeeded", should_not_execute="Omitted")
    ),
    "dag-empty-param": Case(check_dag_empty_param),
    "dag-omitted-output-ref": Case(
        all_of(phases(stage_a="Succeeded", stage_b="Omitted"), error_node_says("stage-c", "absent optional"))
    ),
    "dag-skipped-artifact-subpath-ref": Case(
        all_of(phases(param_producer="Skipped"), error_node_says("consumer", "absent optional"))
    ),
    "dag-skipped-consumer-default": Case(
        all_of(phases(producer="Skipped"), check_consumer_input("fallback-from-input"))
    ),
    "dag-skipped-output-ref": Case(all_of(phases(stage_b="Skipped"), error_node_says("stage-c", "absent optional"))),
    "dag-skipped-producer-default": Case(
        all_of(phases(producer="Skipped"), check_consumer_input("hello-from-producer"))
    ),
    "dag-skipped-withparam-default": Case(check_skipped_withparam_default),
    "dag-targets": Case(check_dag_targets),
    "dag-when-expr-skip": Case(phases(B="Skipped")),
    "dag-with-retries": Case(),
    "exit-1": Case(),
    "global-outputs": Case(check_global_outputs, scale={"sleep 1;": ""}),
    "global-outputs-dag": Case(check_global_outputs, scale={"sleep 1;": ""}),
    # The Go test TestContainerSetRetrySuccess (functional_test.go at f016ad89) waits for ToBeFailed:
    # the container fails on its first run and nothing retries it; EXPECTED.tsv's "Succeeded" is wrong.
    "inline-containerset-retry": Case(check_containerset, phase="Failed"),
    "inline-continue-on-fail": Case(check_continue_on_fail),
    "inline-continue-on-fail-dag": Case(phases(F="Failed", P="Succeeded")),
    "inline-expr-shadowed-names": Case(phases(split="Succeeded", map="Succeeded")),
    "inline-hooks-wf-level": Case(check_hooks_wf_level),
    "inline-item-in-sprig": Case(check_item_in_sprig),
    "inline-param-ads": Case(),
    "inline-param-limit": Case(check_param_limit),
    "inline-retry-backoff": Case(
        check_retry_backoff, scale={"duration: 10s": "duration: 1s", "maxDuration: 1m": "maxDuration: 6s"}
    ),
    "inline-retry-limit": Case(check_retry_limit),
    "inline-step-memoize": Case(check_memo_hit),
    "inline-template-timeout": Case(
        scale={"value: 5s": "value: 1s", "value: 10s": "value: 2s", "value: 15s": "value: 3s", "- 30s": "- 6s"}
    ),
    "json-variables": Case(check_json_variables),
    "loop-sequence-empty": Case(),
    "loops-empty-param": Case(check_loops_empty_param),
    "loops-maps": Case(),
    "loops-sequence": Case(),
    "missing-steps": Case(check_missing_steps),
    "mutex-tmpl-level": Case(check_mutex, scale={"- 2s": "- 0.5s"}),
    "nested-dag-outputs": Case(scale={"sleep 1;": ""}),
    "output-artifact-optional": Case(),
    "output-parameter": Case(prints("consume-parameter", "hello world")),
    "param-aggregation": Case(check_param_aggregation),
    "param-aggregation-fromoutputs": Case(check_param_aggregation_fromoutputs),
    "parallelism-limit": Case(check_parallelism_limit, scale={"sleep 10": "sleep 0.3"}),
    "parameter-aggregation-dag-with-retry": Case(check_aggregation_with_retry),
    "parameter-aggregation-steps-with-retry": Case(check_aggregation_with_retry),
    "retry-on-error-workflow": Case(check_retry_on_error_workflow),
    "scripts-python": Case(),
    "steps-skipped-consumer-default": Case(check_consumer_input("fallback-from-input")),
    "steps-skipped-output-ref": Case(
        all_of(phases(job1="Succeeded", job2="Skipped"), error_node_says(None, "absent optional"))
    ),
    "steps-skipped-producer-default": Case(check_consumer_input("hello-from-producer")),
    "steps-skipped-withparam-ref": Case(all_of(phases(producer="Skipped"), error_node_says(None, "absent optional"))),
    "steps-when-expr-filter": Case(check_steps_when_filter),
    "two-items": Case(),
    "with-items-with-hooks": Case(check_items_with_hooks),
    "workflow-hook-parameter": Case(check_workflow_hook_parameter),
    "xf-dag-exhausted-retries": Case(),
    "xf-dag-fail": Case(check_dag_fail),
    "xf-exit-handler-fail-missing-output": Case(check_exit_missing_output),
    "xf-exit-handler-failed": Case(),
    "xf-exit-handlers": Case(check_exit_handlers),
    "xf-failed-retries": Case(),
    "xf-output-artifact-not-optional": Case(check_output_artifact_not_optional),
    "xf-parallelism-dag-fail-fast": Case(
        all_of(
            message("template has failed or errored children and failFast enabled"),
            phases(task1="Failed", task2="Succeeded"),
        ),
        scale={"- '5'": "- '1'"},
    ),
    "xf-parallelism-step-fail-fast": Case(
        all_of(message("template has failed or errored children and failFast enabled"), check_step_fail_fast),
        scale={"- '5'": "- '1'"},
    ),
    "xf-timeouts-step": Case(scale={"activeDeadlineSeconds: 10": "activeDeadlineSeconds: 2"}),
    "xf-timeouts-workflow": Case(
        check_timeouts_workflow, scale={"activeDeadlineSeconds: 30": "activeDeadlineSeconds: 2"}
    ),
}

# Refused, each because it needs a cluster (EXPECTED.tsv allows a refusal for exactly these).
REFUSED = {
    "daemon-step",
    "dag-skipped-volume-default",
    "data-transformation",
    "http-outputs",
    "resource-template",
    "suspend-template",
    "xf-input-artifact-not-optional",
}


def test_every_corpus_file_is_judged() -> None:
    names = {p.stem for p in corpus().glob("*.yaml")}
    assert names == set(oracle())
    assert names == set(CASES) | REFUSED
    assert all(refusal_allowed(oracle()[n]) for n in REFUSED)


def load(name: str, case: Case | None = None) -> dict[str, object]:
    text = (corpus() / f"{name}.yaml").read_text(encoding="utf-8")
    for old, new in (case.scale if case else {}).items():
        assert old in text, f"scaling {old!r} no longer applies to {name}"
        text = text.replace(old, new)
    return load_text(text, f"{name}.yaml")


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    want = case.phase or expected_phase(oracle()[name])
    result = run_workflow(load(name, case), {}, ExecutorOptions(kaic_home=tmp_path / "home", handle_signals=False))
    assert result.phase == want, f"{name}: {result.phase} ({result.message}); Argo: {oracle()[name]}"
    if case.check is not None:
        case.check(result)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_corpus_refusal_names_a_cluster_feature(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        run_workflow(load(name), {}, ExecutorOptions(handle_signals=False))
    text = str(info.value)
    assert "\n" not in text
    assert CLUSTER_ONLY.search(text), text
