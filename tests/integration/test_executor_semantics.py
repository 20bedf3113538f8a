"""Argo semantics the local executor adds, each checked with real processes against what Argo's
docs and controller source say (workflow/controller/{operator,dag,steps,hooks,scope}.go)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from kaic.errors import ConfigError
from kaic.executor import ExecutorOptions, NodeStatus, WorkflowResult, run_workflow
from tests import workflow_docs
from tests.executor_timing import max_overlap
from tests.workflow_docs import sh

pytestmark = pytest.mark.integration

wf = functools.partial(workflow_docs.wf, name="sem")


def run(doc: dict[str, Any], home: Path, **env: str) -> WorkflowResult:
    return run_workflow(doc, {}, ExecutorOptions(kaic_home=home, handle_signals=False, env=env))


def log(r: WorkflowResult, node: NodeStatus) -> str:
    path = r.run_dir / "nodes" / node.id / "stdout.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def named(r: WorkflowResult, suffix: str) -> NodeStatus:
    found = [n for n in r.nodes.values() if n.name == f"{r.name}{suffix}"]
    assert found, f"no node {r.name}{suffix}; have {sorted(n.name for n in r.nodes.values())}"
    return found[0]


PROBE = "$PROBE"  # the counter's path, from the environment: /tmp paths in a manifest are per node


def concurrency_probe() -> str:
    """A script that records, in ``$PROBE.max``, how many copies of itself ran at once (mkdir is
    the lock), so the bound is checked by what the processes saw, not by timing."""
    lock, cur, top = f"{PROBE}.lock", f"{PROBE}.cur", f"{PROBE}.max"
    take = f"until mkdir {lock} 2>/dev/null; do sleep 0.01; done"
    return (
        f"{take}; n=$(( $(cat {cur} 2>/dev/null || echo 0) + 1 )); echo $n > {cur}; "
        f"m=$(cat {top} 2>/dev/null || echo 0); [ $n -gt $m ] && echo $n > {top}; rmdir {lock}; "
        f"sleep 0.3; {take}; echo $(( $(cat {cur}) - 1 )) > {cur}; rmdir {lock}"
    )


def test_dag_fan_out_is_bounded_by_template_parallelism(tmp_path: Path) -> None:
    """dag.go checkParallelism: the DAG template's parallelism bounds its active children,
    the items of a withItems task included."""
    counter = tmp_path / "running"
    doc = wf(
        [
            {
                "name": "main",
                "parallelism": 2,
                "dag": {"tasks": [{"name": "fan", "template": "work", "withItems": [1, 2, 3, 4, 5, 6]}]},
            },
            sh("work", concurrency_probe()),
        ]
    )
    r = run(doc, tmp_path / "h", PROBE=str(counter))
    assert r.phase == "Succeeded", r.message
    items = [n for n in r.nodes.values() if n.display_name.startswith("fan(")]
    assert len(items) == 6
    assert all(n.phase == "Succeeded" for n in items)
    assert (tmp_path / "running.max").read_text().strip() == "2"
    assert max_overlap(items) == 2


def test_steps_fan_out_is_bounded_the_same_way(tmp_path: Path) -> None:
    counter = tmp_path / "running"
    doc = wf(
        [
            {
                "name": "main",
                "parallelism": 3,
                "steps": [[{"name": "fan", "template": "work", "withSequence": {"count": "7"}}]],
            },
            sh("work", concurrency_probe()),
        ]
    )
    r = run(doc, tmp_path / "h", PROBE=str(counter))
    assert r.phase == "Succeeded", r.message
    assert (tmp_path / "running.max").read_text().strip() == "3"


def test_spec_retry_strategy_is_every_templates_default(tmp_path: Path) -> None:
    """operator.go retryStrategy(): the template's own, else spec.retryStrategy."""
    marker = "$MARK"  # from the environment: a /tmp path in a manifest is private to each node
    doc = wf(
        [
            {"name": "main", "steps": [[{"name": "flaky", "template": "flaky"}], [{"name": "own", "template": "own"}]]},
            sh("flaky", f"[ -e {marker} ] || {{ touch {marker}; exit 1; }}"),
            sh("own", "exit 3", retryStrategy={"limit": 0}),
        ],
        retryStrategy={"limit": 2},
    )
    r = run(doc, tmp_path / "h", MARK=str(tmp_path / "tried"))
    flaky = next(n for n in r.nodes.values() if n.display_name == "flaky")
    assert (flaky.type, flaky.phase) == ("Retry", "Succeeded")
    assert [r.nodes[c].phase for c in flaky.children] == ["Failed", "Succeeded"]
    own = next(n for n in r.nodes.values() if n.display_name == "own")
    assert (own.type, own.phase, own.message) == ("Retry", "Failed", "No more retries left")
    assert len(own.children) == 1
    root = named(r, "")
    assert root.type == "Retry"  # the entrypoint is retried too


def test_step_and_task_expression_hooks(tmp_path: Path) -> None:
    """hooks.go executeTmplLifeCycleHook: a named hook fires once when its expression holds; its
    node is <node>.hooks.<name>, a child of the hooked node."""
    doc = wf(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {
                            "name": "A",
                            "template": "ok",
                            "hooks": {
                                "running": {
                                    "expression": 'tasks.A.status == "Running"',
                                    "template": "say",
                                    "arguments": {"parameters": [{"name": "m", "value": "A runs"}]},
                                },
                                "done": {
                                    "expression": 'tasks.A.status == "Succeeded"',
                                    "template": "say",
                                    "arguments": {"parameters": [{"name": "m", "value": "A done"}]},
                                },
                                "never": {
                                    "expression": 'tasks.A.status == "Failed"',
                                    "template": "say",
                                    "arguments": {"parameters": [{"name": "m", "value": "no"}]},
                                },
                            },
                        },
                        {"name": "B", "template": "inner", "depends": "A"},
                    ]
                },
            },
            {
                "name": "inner",
                "steps": [
                    [
                        {
                            "name": "s",
                            "template": "ok",
                            "hooks": {
                                "ok": {
                                    "expression": 'steps["s"].status == "Succeeded"',
                                    "template": "say",
                                    "arguments": {"parameters": [{"name": "m", "value": "{{steps.s.outputs.result}}"}]},
                                },
                            },
                        }
                    ]
                ],
            },
            sh("ok", "echo fine"),
            {
                "name": "say",
                "inputs": {"parameters": [{"name": "m"}]},
                "container": {"image": "debian", "command": ["echo", "{{inputs.parameters.m}}"]},
            },
        ]
    )
    r = run(doc, tmp_path / "h")
    assert r.phase == "Succeeded", r.message
    a = named(r, ".A")
    hooks = {r.nodes[c].name.removeprefix(a.name): r.nodes[c] for c in a.children}
    assert sorted(hooks) == [".hooks.done", ".hooks.running"]
    assert log(r, hooks[".hooks.running"]).strip() == "A runs"
    assert log(r, hooks[".hooks.done"]).strip() == "A done"
    (inner_hook,) = [n for n in r.nodes.values() if n.name.endswith(".s.hooks.ok")]
    assert log(r, inner_hook).strip() == "fine"


def test_memoize_reuses_outputs_until_max_age(tmp_path: Path) -> None:
    """memoize: a hit copies the cached outputs and runs nothing (MemoizationStatus.hit); an
    entry older than maxAge is a miss."""

    def doc(max_age: str) -> dict[str, Any]:
        return wf(
            [
                {"name": "main", "steps": [[{"name": "m", "template": "memo"}]]},
                sh(
                    "memo",
                    "date +%s%N",
                    memoize={
                        "key": "k-{{workflow.parameters.p}}",
                        "maxAge": max_age,
                        "cache": {"configMap": {"name": "cache"}},
                    },
                ),
            ],
            arguments={"parameters": [{"name": "p", "value": "1"}]},
        )

    home = tmp_path / "h"
    first = run(doc("1h"), home)
    node1 = next(n for n in first.nodes.values() if n.display_name == "m")
    assert node1.memoization == {"hit": False, "key": "k-1", "cacheName": "cache"}
    second = run(doc("1h"), home)
    node2 = next(n for n in second.nodes.values() if n.display_name == "m")
    assert node2.memoization == {"hit": True, "key": "k-1", "cacheName": "cache"}
    assert node2.result == node1.result
    assert not (second.run_dir / "nodes" / node2.id / "stdout.log").exists()
    third = run(doc("1ms"), home)  # the entry is older than a millisecond by now
    node3 = next(n for n in third.nodes.values() if n.display_name == "m")
    assert node3.memoization is not None
    assert node3.memoization["hit"] is False
    assert node3.result != node1.result


def test_semaphore_limit_comes_from_the_local_configmap(tmp_path: Path) -> None:
    home = tmp_path / "h"
    (home / "configmaps").mkdir(parents=True)
    (home / "configmaps" / "limits.yaml").write_text("data:\n  workers: '2'\n", encoding="utf-8")
    counter = tmp_path / "running"
    doc = wf(
        [
            {"name": "main", "steps": [[{"name": "w", "template": "work", "withSequence": {"count": "5"}}]]},
            sh(
                "work",
                concurrency_probe(),
                synchronization={"semaphore": {"configMapKeyRef": {"name": "limits", "key": "workers"}}},
            ),
        ]
    )
    r = run(doc, home, PROBE=str(counter))
    assert r.phase == "Succeeded", r.message
    assert (tmp_path / "running.max").read_text().strip() == "2"


def test_missing_semaphore_config_errors_the_node(tmp_path: Path) -> None:
    doc = wf([sh("main", "true", synchronization={"semaphore": {"configMapKeyRef": {"name": "x", "key": "k"}}})])
    r = run(doc, tmp_path / "h")
    assert r.phase == "Error"
    assert "semaphore x/k" in r.message


def test_container_set_runs_containers_by_their_dependencies(tmp_path: Path) -> None:
    doc = wf(
        [
            {
                "name": "main",
                "containerSet": {
                    "containers": [
                        {"name": "a", "image": "debian", "command": ["sh", "-c", "echo from-a > shared.txt"]},
                        {
                            "name": "main",
                            "image": "debian",
                            "command": ["sh", "-c", "cat shared.txt"],
                            "dependencies": ["a"],
                        },
                    ]
                },
            }
        ]
    )
    r = run(doc, tmp_path / "h")
    assert r.phase == "Succeeded", r.message
    pod = named(r, "")
    assert pod.result == "from-a"
    assert sorted(r.nodes[c].display_name for c in pod.children) == ["a", "main"]
    assert all(r.nodes[c].type == "Container" and r.nodes[c].phase == "Succeeded" for c in pod.children)


def test_expression_error_at_run_time_fails_the_node_with_the_message(tmp_path: Path) -> None:
    doc = wf(
        [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": "bad",
                            "template": "say",
                            "arguments": {"parameters": [{"name": "m", "value": "{{=asInt(workflow.parameters.n)}}"}]},
                        }
                    ]
                ],
            },
            {
                "name": "say",
                "inputs": {"parameters": [{"name": "m"}]},
                "container": {"image": "debian", "command": ["echo", "{{inputs.parameters.m}}"]},
            },
        ],
        # a value known only at run time: a constant expression that cannot succeed is refused as bad input
        # before the run (tests/unit/test_bad_input.py), like Argo's lint would
        arguments={"parameters": [{"name": "n", "value": "x"}]},
    )
    r = run(doc, tmp_path / "h")
    assert r.phase == "Failed"
    bad = next(n for n in r.nodes.values() if n.display_name == "bad")
    assert bad.phase == "Error"
    assert "asInt" in bad.message
    assert "'x' is not a number" in bad.message


def test_workflow_outputs_artifacts_and_parameters(tmp_path: Path) -> None:
    doc = wf(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "make", "template": "make"},
                        {"name": "use", "template": "use", "depends": "make"},
                    ]
                },
            },
            sh(
                "make",
                "echo -n v1 > /tmp/p; echo data > /tmp/a",
                outputs={
                    "parameters": [{"name": "p", "valueFrom": {"path": "/tmp/p"}, "globalName": "gp"}],
                    "artifacts": [{"name": "a", "path": "/tmp/a", "globalName": "ga"}],
                },
            ),
            {
                "name": "use",
                "inputs": {
                    "artifacts": [{"name": "in", "path": "/tmp/in", "from": "{{workflow.outputs.artifacts.ga}}"}]
                },
                "container": {
                    "image": "debian",
                    "command": ["sh", "-c", "cat /tmp/in; echo {{workflow.outputs.parameters.gp}}"],
                },
            },
        ]
    )
    r = run(doc, tmp_path / "h")
    assert r.phase == "Succeeded", r.message
    assert log(r, named(r, ".use")).split() == ["data", "v1"]
    status = json.loads((r.run_dir / "status.json").read_text(encoding="utf-8"))["status"]
    assert status["outputs"]["parameters"] == [{"name": "gp", "value": "v1"}]
    assert [a["name"] for a in status["outputs"]["artifacts"]] == ["ga"]


def test_a_cluster_feature_is_refused_in_one_line(tmp_path: Path) -> None:
    doc = wf([{"name": "main", "resource": {"action": "create", "manifest": "{}"}}])
    with pytest.raises(ConfigError) as info:
        run(doc, tmp_path / "h")
    assert "resource templates need a Kubernetes API" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_failing_hook_expression_errors_the_hooked_node(tmp_path: Path) -> None:
    doc = wf(
        [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": "s",
                            "template": "ok",
                            "hooks": {"bad": {"expression": "asInt('x') > 1", "template": "ok"}},
                        }
                    ]
                ],
            },
            sh("ok", "true"),
        ]
    )
    r = run(doc, tmp_path / "h")
    assert r.phase == "Failed"
    s = next(n for n in r.nodes.values() if n.display_name == "s")
    assert s.phase == "Error"
    assert "hook 'bad'" in s.message
    assert "'x' is not a number" in s.message
