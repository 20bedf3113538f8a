"""Local executor features with real processes: CLI exit codes, /tmp isolation, the interpreter,
artifacts, resume, signals, parallelism and status.json."""

from __future__ import annotations

import functools
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaic.executor import ExecutorOptions, NodeStatus, resume_workflow, run_workflow
from kaic.executor.runner import LinePrinter
from tests import workflow_docs
from tests.workflow_docs import sh

pytestmark = pytest.mark.integration

wf = functools.partial(workflow_docs.wf, name="feat")


def stdout(run_dir: Path, node: NodeStatus) -> str:
    return (run_dir / "nodes" / node.id / "stdout.log").read_text(encoding="utf-8")


def cli(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAIC_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "kaic.cli", "local-run", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_cli_exit_codes_and_status_json(tmp_path: Path) -> None:
    ok = write(
        tmp_path / "ok.yaml",
        wf(
            [sh("main", "echo {{workflow.parameters.m}}")],
            arguments={"parameters": [{"name": "m", "value": "a"}]},
        ),
    )
    res = cli(str(ok), "-p", "m=from-cli", "--status-json", str(tmp_path / "out.json"), home=tmp_path / "h")
    assert res.returncode == 0, res.stderr
    assert re.search(r"^  \d\d:\d\d:\d\d  Succeeded  feat$", res.stderr, re.M)
    status = json.loads((tmp_path / "out.json").read_text())
    assert status["metadata"]["name"] == "feat"
    assert status["status"]["phase"] == "Succeeded"
    (node,) = status["status"]["nodes"].values()
    assert {
        "id",
        "name",
        "displayName",
        "type",
        "templateName",
        "phase",
        "message",
        "startedAt",
        "finishedAt",
        "children",
        "outputs",
    } <= set(node)
    assert node["outputs"]["result"] == "from-cli"
    assert node["outputs"]["exitCode"] == "0"

    bad = write(tmp_path / "fail.yaml", wf([sh("main", "exit 3")]))
    assert cli(str(bad), home=tmp_path / "h").returncode == 1

    cyc = wf(
        [
            {
                "name": "d",
                "dag": {
                    "tasks": [
                        {"name": "a", "template": "t", "depends": "b"},
                        {"name": "b", "template": "t", "depends": "a"},
                    ]
                },
            },
            sh("t", "true"),
        ]
    )
    res = cli(str(write(tmp_path / "cycle.yaml", cyc)), home=tmp_path / "h")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"kaic: error: {tmp_path / 'cycle.yaml'}: spec.templates[d].dag.tasks: dependency cycle: a -> b -> a"
    ]
    assert cli(str(ok), "-p", "nope=1", home=tmp_path / "h").returncode == 2
    assert cli(str(tmp_path / "missing.yaml"), home=tmp_path / "h").returncode == 2


def test_parallel_nodes_have_private_tmp_and_the_current_interpreter(tmp_path: Path) -> None:
    writer = sh(
        "writer",
        "echo {{inputs.parameters.n}} > /tmp/num; sleep 0.3; cat /tmp/num",
        inputs={"parameters": [{"name": "n"}]},
        outputs={"parameters": [{"name": "num", "valueFrom": {"path": "/tmp/num"}}]},
    )
    py = {
        "name": "py",
        "container": {
            "image": "python",
            "command": ["python3", "-c"],
            "args": ["import sys; print(sys.executable)"],
        },
    }
    nested = sh("nested", 'python -c "import sys; print(sys.prefix)"; echo "$GREETING"')
    nested["container"]["env"] = [{"name": "GREETING", "value": "hi {{workflow.name}}"}]
    main = {
        "name": "main",
        "steps": [
            [
                {
                    "name": "w",
                    "template": "writer",
                    "withSequence": {"count": "4"},
                    "arguments": {"parameters": [{"name": "n", "value": "{{item}}"}]},
                },
                {"name": "py", "template": "py"},
                {"name": "nested", "template": "nested"},
            ]
        ],
    }
    result = run_workflow(wf([main, writer, py, nested]), {}, ExecutorOptions(kaic_home=tmp_path))
    assert result.phase == "Succeeded"
    writers = [n for n in result.nodes.values() if n.display_name.startswith("w(")]
    assert sorted((n.output("num"), n.result) for n in writers) == [(str(i), str(i)) for i in range(4)]
    (py_node,) = [n for n in result.nodes.values() if n.display_name == "py"]
    assert py_node.result == sys.executable
    (nested_node,) = [n for n in result.nodes.values() if n.display_name == "nested"]
    assert stdout(result.run_dir, nested_node).splitlines() == [sys.prefix, "hi feat"]


def test_artifacts_flow_through_the_object_store(tmp_path: Path) -> None:
    make = sh(
        "make",
        "mkdir -p /out && echo payload > /out/data.txt && echo keyed > /tmp/k.txt",
        outputs={
            "artifacts": [
                {"name": "data", "path": "/out/data.txt"},
                {"name": "keyed", "path": "/tmp/k.txt", "s3": {"key": "shared/k.txt"}},
            ]
        },
    )
    use = sh(
        "use",
        "cat /in/data.txt /tmp/k.txt /tmp/raw.txt",
        inputs={
            "artifacts": [
                {"name": "data", "path": "/in/data.txt"},
                {"name": "keyed", "path": "/tmp/k.txt", "s3": {"key": "shared/k.txt"}},
                {"name": "raw", "path": "/tmp/raw.txt", "raw": {"data": "inline"}},
            ]
        },
    )
    main = {
        "name": "main",
        "steps": [
            [{"name": "make", "template": "make"}],
            [
                {
                    "name": "use",
                    "template": "use",
                    "arguments": {"artifacts": [{"name": "data", "from": "{{steps.make.outputs.artifacts.data}}"}]},
                }
            ],
        ],
    }
    result = run_workflow(wf([main, make, use], name="arts"), {}, ExecutorOptions(kaic_home=tmp_path))
    assert result.phase == "Succeeded", result.message
    (use_node,) = [n for n in result.nodes.values() if n.display_name == "use"]
    assert stdout(result.run_dir, use_node).split() == ["payload", "keyed", "inline"]
    assert (tmp_path / "objects" / "artifacts" / "arts" / "shared" / "k.txt").read_text() == "keyed\n"


def test_resume_does_not_redo_succeeded_nodes(tmp_path: Path) -> None:
    # The run directory is $TMPDIR/../../.. of every node: count runs of step one there.
    one = sh("one", 'echo ran >> "$TMPDIR/../../../count"; echo 41')
    two = sh(
        "two",
        'test -f "$TMPDIR/../../../ok" && echo {{inputs.parameters.v}}',
        inputs={"parameters": [{"name": "v"}]},
    )
    main = {
        "name": "main",
        "steps": [
            [{"name": "one", "template": "one"}],
            [
                {
                    "name": "two",
                    "template": "two",
                    "arguments": {"parameters": [{"name": "v", "value": "{{steps.one.outputs.result}}"}]},
                }
            ],
        ],
    }
    options = ExecutorOptions(kaic_home=tmp_path)
    first = run_workflow(wf([main, one, two], name="resumable"), {}, options)
    assert first.phase == "Failed"
    (first.run_dir / "ok").write_text("", encoding="utf-8")
    second = resume_workflow(first.run_dir, options)
    assert second.phase == "Succeeded"
    assert (first.run_dir / "count").read_text().splitlines() == ["ran"]
    (one_node,) = [n for n in second.nodes.values() if n.display_name == "one"]
    assert one_node.message == "reused from the previous run"
    (two_node,) = [n for n in second.nodes.values() if n.display_name == "two"]
    assert two_node.result == "41"
    res = cli("--resume", "resumable", "-q", home=tmp_path)  # the CLI flag: everything reused now
    assert res.returncode == 0, res.stderr
    assert (first.run_dir / "count").read_text().splitlines() == ["ran"]


def test_sigint_stops_nodes_and_still_runs_the_exit_handler(tmp_path: Path) -> None:
    doc = wf(
        [
            sh("main", 'echo $$ > "$TMPDIR/../../../pid"; exec sleep 60'),
            sh("bye", 'echo "{{workflow.status}}"'),
        ],
        name="stoppable",
        onExit="bye",
    )
    path = write(tmp_path / "stop.yaml", doc)
    env = {**os.environ, "KAIC_HOME": str(tmp_path / "h")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kaic.cli", "local-run", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = tmp_path / "h" / "runs" / "stoppable"
    pid_file = run_dir / "pid"
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    sleeper = int(pid_file.read_text())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, err
    status = json.loads((run_dir / "status.json").read_text())["status"]
    assert (status["phase"], status["message"]) == ("Failed", "interrupted")
    nodes = {n["displayName"]: n for n in status["nodes"].values()}
    assert nodes["stoppable"]["phase"] == "Failed"
    assert nodes["onExit"]["phase"] == "Succeeded"
    assert (run_dir / "nodes" / nodes["onExit"]["id"] / "stdout.log").read_text().strip() == "Failed"
    with pytest.raises(ProcessLookupError):
        os.kill(sleeper, 0)


def test_max_parallel_limits_pods_and_progress_lines(tmp_path: Path) -> None:
    main = {"name": "main", "steps": [[{"name": "s", "template": "s", "withItems": [1, 2, 3]}]]}
    seen: list[tuple[str, str]] = []
    result = run_workflow(
        wf([main, sh("s", "sleep 0.2")]),
        {},
        ExecutorOptions(kaic_home=tmp_path, max_parallel=1, progress=lambda n: seen.append((n.display_name, n.phase))),
    )
    assert result.phase == "Succeeded"
    pods = sorted((n for n in result.nodes.values() if n.type == "Pod"), key=lambda n: n.started_mono)
    assert all(a.finished_mono <= b.started_mono for a, b in itertools.pairwise(pods))
    assert ("s(0:1)", "Running") in seen
    assert ("s(0:1)", "Succeeded") in seen
    out = io.StringIO()
    LinePrinter(out)(pods[0])
    assert re.fullmatch(r"  \d\d:\d\d:\d\d  Succeeded  feat\[0\]\.s\(0:1\)\n", out.getvalue())


def test_workflow_template_with_parameter_override(tmp_path: Path) -> None:
    doc = wf(
        [sh("main", "echo {{workflow.parameters.who}}")],
        arguments={"parameters": [{"name": "who", "value": "x"}]},
    )
    doc["kind"] = "WorkflowTemplate"
    doc["metadata"] = {"name": "tmpl"}
    res = cli(
        str(write(tmp_path / "t.yaml", doc)),
        "-p",
        "who=template",
        "--status-json",
        str(tmp_path / "s.json"),
        home=tmp_path / "h",
    )
    assert res.returncode == 0, res.stderr
    status = json.loads((tmp_path / "s.json").read_text())
    assert re.fullmatch(r"tmpl-[a-z]{5}", status["metadata"]["name"])
    (node,) = status["status"]["nodes"].values()
    assert node["outputs"]["result"] == "template"


def test_missing_command_is_an_error_node(tmp_path: Path) -> None:
    doc = wf([{"name": "main", "container": {"image": "x", "command": ["kaic-no-such-binary-xyz"]}}])
    result = run_workflow(doc, {}, ExecutorOptions(kaic_home=tmp_path))
    assert result.phase == "Error"
    (node,) = result.nodes.values()
    assert node.phase == "Error"
    assert "cannot start 'kaic-no-such-binary-xyz'" in node.message


@pytest.mark.parametrize(("fail_fast", "c_runs"), [(True, False), (False, True)])
def test_dag_fail_fast_stops_a_slow_branch(tmp_path: Path, fail_fast: bool, c_runs: bool) -> None:
    tasks = [
        {"name": "A", "template": "bad"},
        {"name": "B", "template": "slow"},
        {"name": "C", "template": "ok", "depends": "B"},
    ]
    doc = wf(
        [
            {"name": "main", "dag": {"failFast": fail_fast, "tasks": tasks}},
            sh("bad", "exit 1"),
            sh("slow", "sleep 1.5"),
            sh("ok", "true"),
        ]
    )
    result = run_workflow(doc, {}, ExecutorOptions(kaic_home=tmp_path))
    assert result.phase == "Failed"
    assert any(n.display_name == "C" for n in result.nodes.values()) is c_runs
