"""Loading and validating manifests: the allow-list, bad references, cycles, parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kaic.errors import ConfigError
from kaic.executor.manifest import find_cycle, load_file, load_text, prepare

pytestmark = pytest.mark.unit


def wf(templates: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "t-"},
        "spec": {"entrypoint": templates[0]["name"], "templates": templates, **spec},
    }


ECHO = {
    "name": "echo",
    "inputs": {"parameters": [{"name": "message"}]},
    "container": {"image": "busybox", "command": ["echo", "{{inputs.parameters.message}}"]},
}


def diamond(depends_d: str) -> dict[str, Any]:
    def task(name: str, depends: str | None = None) -> dict[str, Any]:
        t: dict[str, Any] = {
            "name": name,
            "template": "echo",
            "arguments": {"parameters": [{"name": "message", "value": name}]},
        }
        if depends:
            t["depends"] = depends
        return t

    tasks = [task("A"), task("B", "A"), task("C", "A"), task("D", depends_d)]
    return wf([{"name": "diamond", "dag": {"tasks": tasks}}, ECHO])


def error_of(doc: dict[str, Any], params: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        prepare(doc, params or {}, "workflow.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_valid_diamond_loads() -> None:
    model = prepare(diamond("B && C"), {}, "workflow.yaml")
    assert model.entrypoint == "diamond"
    assert set(model.templates) == {"diamond", "echo"}
    assert model.generate_name == "t-"


def test_unknown_task_in_depends_names_the_path() -> None:
    assert error_of(diamond("B && E")) == (
        "workflow.yaml: spec.templates[diamond].dag.tasks[D].depends: unknown task 'E'"
    )


def test_daemoned_is_refused() -> None:
    assert "'B.Daemoned': daemons are unsupported" in error_of(diamond("B.Daemoned && C"))


def test_dependency_cycle() -> None:
    doc = diamond("B && C")
    doc["spec"]["templates"][0]["dag"]["tasks"][0]["depends"] = "D"
    assert "spec.templates[diamond].dag.tasks: dependency cycle: A -> D -> B -> A" in error_of(doc)


def test_find_cycle_pure() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]


def test_unsupported_fields_are_all_listed_with_paths() -> None:
    doc = wf(
        [
            {"name": "main", "steps": [[{"name": "a", "template": "k8s"}, {"name": "b", "template": "c"}]]},
            {"name": "k8s", "resource": {"action": "create", "manifest": "x"}},
            {
                "name": "c",
                "container": {"image": "x", "command": ["true"], "volumeMounts": [{"name": "v"}]},
                "daemon": True,
            },
        ],
        volumes=[{"name": "v"}],
    )
    message = error_of(doc)
    assert message.startswith("workflow.yaml: 4 problems: ")
    for expected in (
        "spec.volumes: volumes are unsupported",
        "spec.templates[k8s].resource: resource templates need a Kubernetes API",
        "spec.templates[c].container.volumeMounts: volume mounts are unsupported",
        "spec.templates[c].daemon: daemon templates are unsupported",
    ):
        assert expected in message


def test_unknown_keys_use_the_generic_reason() -> None:
    doc = wf([{"name": "main", "container": {"image": "x", "command": ["true"]}, "frobnicate": 1}])
    assert (
        error_of(doc) == "workflow.yaml: spec.templates[main].frobnicate: unsupported by the local executor"
    )


def test_missing_template_and_missing_argument() -> None:
    doc = wf(
        [
            {
                "name": "main",
                "steps": [[{"name": "a", "template": "nope"}], [{"name": "b", "template": "echo"}]],
            },
            ECHO,
        ]
    )
    message = error_of(doc)
    assert "spec.templates[main].steps[0][a].template: unknown template 'nope'" in message
    assert (
        "spec.templates[main].steps[1][b].arguments: missing parameter 'message' required by template 'echo'"
        in (message)
    )


def test_reference_to_an_undeclared_input_or_step() -> None:
    doc = wf(
        [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": "a",
                            "template": "p",
                            "arguments": {
                                "parameters": [{"name": "x", "value": "{{steps.zz.outputs.result}}"}]
                            },
                        }
                    ]
                ],
            },
            {
                "name": "p",
                "inputs": {"parameters": [{"name": "x"}]},
                "container": {"image": "x", "command": ["echo", "{{inputs.parameters.y}}"]},
            },
        ]
    )
    message = error_of(doc)
    assert "{{steps.zz.outputs.result}}: no step named 'zz'" in message
    assert "spec.templates[p]: {{inputs.parameters.y}}: template has no input parameter 'y'" in message


def test_indefinite_suspend_is_refused() -> None:
    doc = wf([{"name": "main", "suspend": {}}])
    assert "spec.templates[main].suspend: an indefinite suspend" in error_of(doc)


def test_node_selector_keys_must_be_evaluable() -> None:
    doc = wf(
        [
            {
                "name": "main",
                "nodeSelector": {"nvidia.com/gpu.present": "true"},
                "container": {"image": "x", "command": ["true"]},
            }
        ]
    )
    assert (
        "spec.templates[main].nodeSelector.nvidia.com/gpu.present: cannot be evaluated locally"
        in error_of(doc)
    )


def test_parameters_overrides_and_unknowns() -> None:
    doc = wf(
        [{"name": "main", "container": {"image": "x", "command": ["echo", "{{workflow.parameters.m}}"]}}],
        arguments={
            "parameters": [{"name": "m", "value": "a"}, {"name": "mode", "value": "x", "enum": ["x", "y"]}]
        },
    )
    assert prepare(doc, {"m": "b"}, "w").parameters == {"m": "b", "mode": "x"}
    assert "-p nope: the workflow has no parameter 'nope' (declared: m, mode)" in error_of(doc, {"nope": "1"})
    assert "spec.arguments.parameters[mode]: 'z' is not one of x, y" in error_of(doc, {"mode": "z"})


def test_required_workflow_parameter_without_value() -> None:
    doc = wf(
        [{"name": "main", "container": {"image": "x", "command": ["true"]}}],
        arguments={"parameters": [{"name": "m"}]},
    )
    assert error_of(doc) == "workflow.yaml: spec.arguments.parameters[m]: no value; pass -p m=VALUE"


def test_bad_when_syntax_is_caught_before_running() -> None:
    doc = wf(
        [
            {"name": "main", "steps": [[{"name": "a", "template": "t", "when": "{{workflow.name}} == ("}]]},
            {"name": "t", "container": {"image": "x", "command": ["true"]}},
        ]
    )
    assert "spec.templates[main].steps[0][a].when: when expression" in error_of(doc)


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: Workflow\nspec: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML: line \d+, column \d+"):
        load_file(path)
    with pytest.raises(ConfigError, match="expected exactly one YAML document"):
        load_text("a: 1\n---\nb: 2\n", "two.yaml")
    with pytest.raises(ConfigError, match="kind: 'Pod' is not one of"):
        prepare({"kind": "Pod"}, {}, "pod.yaml")


def test_workflow_template_runs_as_a_workflow_with_overrides() -> None:
    doc = wf(
        [{"name": "main", "container": {"image": "x", "command": ["echo", "{{workflow.parameters.m}}"]}}],
        arguments={"parameters": [{"name": "m", "value": "a"}]},
    )
    doc["kind"] = "WorkflowTemplate"
    doc["metadata"] = {"name": "tmpl"}
    model = prepare(doc, {"m": "z"}, "t.yaml")
    assert model.generate_name == "tmpl-"
    assert model.parameters == {"m": "z"}


def test_workflow_template_ref_is_resolved_from_given_templates() -> None:
    template = wf(
        [{"name": "main", "container": {"image": "x", "command": ["true"]}}],
        arguments={"parameters": [{"name": "m", "value": "a"}]},
    )
    template["kind"] = "WorkflowTemplate"
    template["metadata"] = {"name": "tmpl"}
    ref = {
        "kind": "Workflow",
        "metadata": {"generateName": "r-"},
        "spec": {
            "workflowTemplateRef": {"name": "tmpl"},
            "arguments": {"parameters": [{"name": "m", "value": "b"}]},
        },
    }
    assert prepare(ref, {}, "r.yaml", [template]).parameters == {"m": "b"}
    with pytest.raises(ConfigError, match="WorkflowTemplate 'tmpl' not given"):
        prepare(ref, {}, "r.yaml")


def test_every_corpus_manifest_is_plain_yaml() -> None:
    # The loader accepts what yaml.safe_load accepts; a sanity check on a literal document.
    assert load_text(yaml.safe_dump(diamond("B && C")), "x.yaml")["kind"] == "Workflow"


def test_a_required_secret_reference_is_refused_but_an_optional_one_runs_locally() -> None:
    from kaic.executor.manifest import prepare

    def wf(optional: bool) -> dict[str, Any]:
        ref = {"name": "creds", "key": "token", "optional": optional}
        return {
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w"},
            "spec": {"entrypoint": "main", "templates": [{
                "name": "main",
                "container": {"image": "x", "command": ["true"],
                              "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": ref}}]},
            }]},
        }

    assert prepare(wf(True), {}, "w.yaml").entrypoint == "main"
    with pytest.raises(ConfigError, match=r"env\[TOKEN\]\.valueFrom: only optional"):
        prepare(wf(False), {}, "w.yaml")
