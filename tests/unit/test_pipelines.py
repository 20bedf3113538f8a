"""The conformance WorkflowTemplate and nightly CronWorkflow: structure, failure semantics, validation,
and the golden files (`make golden` regenerates them on purpose)."""

from __future__ import annotations

import argparse
import copy
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from kaic import stepkit
from kaic.cli import main
from kaic.errors import ConfigError
from kaic.profiles import BUILTIN, load_profile
from pipelines.config import PipelineConfig
from pipelines.conformance import DEPENDS, PARAMETERS, STEPS, build_workflow, step_args
from pipelines.manifests import compile_manifests, load_schema, roundtrip_problems, schema_problems
from pipelines.schedule import build_cron
from tests.conftest import ROOT, shared_path
from tests.integration.fake_argo import _depends_holds

pytestmark = pytest.mark.unit

GOLDEN = ROOT / "tests" / "golden"
PARAM_REF = re.compile(r"\{\{workflow\.parameters\.([A-Za-z0-9_-]+)\}\}")


def config_for(profile: str, **overrides: object) -> PipelineConfig:
    return PipelineConfig.from_profile(load_profile(profile), profile, **overrides)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    body: dict[str, Any] = build_workflow(config_for("generic")).to_dict()
    return body


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return load_schema(shared_path("reference", "argo-workflows", "schema.json"))


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in body["spec"]["templates"]}


# ---- golden files -------------------------------------------------------------------------------
def test_compile_output_matches_the_golden_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in GOLDEN.iterdir())
    for name in written:
        assert (tmp_path / name).read_bytes() == (GOLDEN / name).read_bytes(), (
            f"{name} differs from tests/golden: if intended, run `make golden` and review the diff")
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / n) for n in
                                                    ("kaic-conformance.workflowtemplate.yaml",
                                                     "kaic-conformance-nightly.cronworkflow.yaml")]


def test_output_is_byte_stable() -> None:
    first = [m.text for m in compile_manifests(config_for("generic"))]
    assert first == [m.text for m in compile_manifests(config_for("generic"))]


@pytest.mark.parametrize("profile", BUILTIN)
def test_structure_is_identical_for_every_platform(profile: str, template: dict[str, Any]) -> None:
    other = build_workflow(config_for(profile)).to_dict()

    def without_defaults(body: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(body)
        for p in body["spec"]["arguments"]["parameters"]:
            p.pop("value")
        return body

    assert without_defaults(other) == without_defaults(template)
    values = {p["name"]: p["value"] for p in other["spec"]["arguments"]["parameters"]}
    assert values["profile"] == profile
    assert values["world-size"] == str(load_profile(profile).training.world_size)


# ---- validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", BUILTIN)
def test_every_manifest_round_trips_and_validates_against_argo_schema(profile: str,
                                                                     schema: dict[str, Any]) -> None:
    for manifest in compile_manifests(config_for(profile)):
        assert roundtrip_problems(manifest.body) == []
        assert schema_problems(manifest.body, schema) == []


def test_round_trip_catches_unknown_and_mistyped_fields(template: dict[str, Any]) -> None:
    body = copy.deepcopy(template)
    body["spec"]["templates"][1]["container"]["volumeMountz"] = []
    body["spec"]["onExitHandler"] = "teardown"
    assert roundtrip_problems(body) == [
        "spec.onExitHandler: not a field of Hera's model (dropped by the round trip)",
        "spec.templates[1].container.volumeMountz: not a field of Hera's model (dropped by the round trip)",
    ]
    body = copy.deepcopy(template)
    body["spec"]["activeDeadlineSeconds"] = "soon"
    assert "spec.activeDeadlineSeconds" in roundtrip_problems(body)[0]


def test_schema_catches_wrong_types_and_accepts_int_or_string_ints(template: dict[str, Any],
                                                                   schema: dict[str, Any]) -> None:
    body = copy.deepcopy(template)
    body["spec"]["templates"][0]["dag"]["tasks"] = "provision"
    assert schema_problems(body, schema) == ["spec.templates.0.dag.tasks: 'provision' is not of type 'array'"]
    # The quirk handled explicitly: IntOrString is string-only in Argo's schema, but Argo takes ints.
    assert isinstance(by_name(template)["provision"]["activeDeadlineSeconds"], int)
    assert schema["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {"type": "string"}


def test_compile_validates_against_a_schema_file_and_writes_nothing_on_a_bad_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = shared_path("reference", "argo-workflows", "schema.json")
    assert main(["compile", "--out", str(tmp_path / "ok"), "--schema", str(good)]) == 0
    bad = tmp_path / "schema.json"
    bad.write_text("{not json")
    assert main(["compile", "--out", str(tmp_path / "no"), "--schema", str(bad)]) == 2
    assert f"--schema {bad}: cannot read a JSON schema" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(("flags", "message"), [
    (["--cron", "0 2 * *"], "--cron: '0 2 * *' is not a cron expression"),
    (["--timezone", "Mars/Olympus"], "--timezone: 'Mars/Olympus' is not an IANA time zone"),
    (["--image", "has space"], "--image: 'has space' is not a container image reference"),
    (["--profile", "nowhere"], "profile 'nowhere': no such built-in profile"),
])
def test_compile_bad_input_is_one_line_exit_2_and_writes_nothing(
        flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "--out", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


# ---- the DAG and its failure semantics ---------------------------------------------------------------
def test_dag_shape_exit_handler_and_targets(template: dict[str, Any]) -> None:
    spec = template["spec"]
    dag = by_name(template)[spec["entrypoint"]]["dag"]
    assert [t["name"] for t in dag["tasks"]] == ["provision", "data", "train", "serve", "report"]
    assert spec["onExit"] == "teardown"
    assert "teardown" not in [t["name"] for t in dag["tasks"]]
    assert dag["failFast"] is False
    assert set(dag["target"].split()) == {"serve", "report"}  # report runs; a failed branch still fails


def simulate(template: dict[str, Any], outcomes: dict[str, str]) -> dict[str, str]:
    """Argo's rule for each task in DAG order: run when `depends` holds, else Omitted."""
    tasks = by_name(template)["conformance"]["dag"]["tasks"]
    phases: dict[str, str] = {}
    for task in tasks:
        run = _depends_holds(task.get("depends"), phases)
        phases[task["name"]] = outcomes.get(task["name"], "Succeeded") if run else "Omitted"
    return phases


@pytest.mark.parametrize(("outcomes", "expected"), [
    ({}, dict.fromkeys(("provision", "data", "train", "serve", "report"), "Succeeded")),
    ({"data": "Failed"}, {"provision": "Succeeded", "data": "Failed", "train": "Omitted", "serve": "Omitted",
                          "report": "Succeeded"}),
    ({"provision": "Failed"}, {"provision": "Failed", "data": "Succeeded", "train": "Succeeded",
                               "serve": "Succeeded", "report": "Succeeded"}),
    ({"provision": "Error"}, {"provision": "Error", "data": "Omitted", "train": "Omitted", "serve": "Omitted",
                              "report": "Succeeded"}),
    ({"train": "Error"}, {"provision": "Succeeded", "data": "Succeeded", "train": "Error", "serve": "Omitted",
                          "report": "Succeeded"}),
    ({"serve": "Failed", "report": "Failed"}, {"provision": "Succeeded", "data": "Succeeded",
                                               "train": "Succeeded", "serve": "Failed", "report": "Failed"}),
])
def test_report_always_runs_and_failures_omit_dependents(template: dict[str, Any], outcomes: dict[str, str],
                                                         expected: dict[str, str]) -> None:
    assert simulate(template, outcomes) == expected


def test_depends_uses_only_what_the_local_executor_supports() -> None:
    result = r"[a-z]+\.(Succeeded|Failed|Errored|Skipped|Omitted)"
    allowed = re.compile(rf"^(\s*\(?\s*{result}\s*\)?\s*(&&|\|\|)?)+$")
    for expr in DEPENDS.values():
        assert allowed.match(expr), expr


# ---- the step containers ----------------------------------------------------------------------------
@pytest.mark.parametrize("step", list(STEPS))
def test_step_container(step: str, template: dict[str, Any]) -> None:
    tmpl = by_name(template)[step]
    c = tmpl["container"]
    assert c["image"] == "{{workflow.parameters.image}}"
    assert c["command"] == ["kaic"]
    assert c["args"][:4] == ["step", step, "--run-id", "{{workflow.name}}"]
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert set(c["resources"]["requests"]) == {"cpu", "memory"}
    assert tmpl["activeDeadlineSeconds"] > 0
    assert tmpl["metadata"]["labels"]["kaic.dev/run-id"] == "{{workflow.name}}"
    # credentials only from an optional Secret, never a literal value
    for var in c["env"]:
        assert set(var) == {"name", "valueFrom"}
        assert var["valueFrom"]["secretKeyRef"]["optional"] is True
    assert {v["name"] for v in c["env"]} == {"KAIC_S3_ENDPOINT", "KAIC_S3_ACCESS_KEY", "KAIC_S3_SECRET_KEY"}
    assert ("retryStrategy" in tmpl) == (step in ("provision", "teardown"))


def test_pod_level_settings(template: dict[str, Any]) -> None:
    spec = template["spec"]
    assert spec["serviceAccountName"] == "kaic-steps"
    assert spec["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert by_name(template)["provision"]["retryStrategy"]["retryPolicy"] == "OnError"


def test_every_parameter_is_declared_and_used(template: dict[str, Any]) -> None:
    declared = [p["name"] for p in template["spec"]["arguments"]["parameters"]]
    assert declared == [name for name, _, _ in PARAMETERS]
    used = set(PARAM_REF.findall(str(template["spec"]["templates"])))
    assert used == set(declared)
    suite = next(p for p in template["spec"]["arguments"]["parameters"] if p["name"] == "suite")
    assert suite["enum"] == ["quick", "full"]


def _concrete(body: dict[str, Any], args: list[str]) -> list[str]:
    """What Argo hands the container: parameter references replaced by the template's defaults."""
    defaults = {p["name"]: p["value"] for p in body["spec"]["arguments"]["parameters"]}
    named = [a.replace("{{workflow.name}}", "kaic-conformance-abcde") for a in args]
    return [PARAM_REF.sub(lambda m: defaults[m.group(1)], a) for a in named]


@pytest.mark.parametrize("step", list(STEPS))
def test_step_args_parse_with_the_step_harness_common_flags(step: str) -> None:
    parser = argparse.ArgumentParser()
    stepkit.add_common_arguments(parser)
    body = build_workflow(PipelineConfig()).to_dict()
    common = _concrete(body, by_name(body)[step]["container"]["args"][2:len(step_args("data"))])
    ns = parser.parse_args(common)
    assert ns.run_id == "kaic-conformance-abcde"


def test_train_flags_are_accepted_by_the_train_step() -> None:
    try:
        train = importlib.import_module("steps.train")
    except ModuleNotFoundError:
        pytest.skip("steps/train is not written yet: cannot check --world-size/--accelerators-per-worker")
    parser = argparse.ArgumentParser()
    stepkit.add_common_arguments(parser)
    train.configure(parser)
    body = build_workflow(PipelineConfig(world_size=3, accelerators_per_worker=1)).to_dict()
    ns = parser.parse_args(_concrete(body, by_name(body)["train"]["container"]["args"][2:]))
    assert (ns.world_size, ns.accelerators_per_worker) == (3, 1)


# ---- the CronWorkflow ---------------------------------------------------------------------------------
def test_cron_references_the_template_and_limits_history() -> None:
    config = config_for("generic", schedules=("0 2 * * *", "0 14 * * 6"), timezone="Asia/Tokyo")
    cron = build_cron(config).to_dict()
    spec = cron["spec"]
    assert cron["metadata"]["name"] == "kaic-conformance-nightly"
    assert spec["schedules"] == ["0 2 * * *", "0 14 * * 6"]
    assert "schedule" not in spec  # removed in Argo v4; `schedules` exists since 3.6
    assert spec["timezone"] == "Asia/Tokyo"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] > 0
    assert spec["failedJobsHistoryLimit"] >= spec["successfulJobsHistoryLimit"]
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["workflowSpec"]["workflowTemplateRef"] == {"name": build_workflow(PipelineConfig()).name}


@pytest.mark.parametrize("expr", ["0 2 * * *", "*/15 * * * 1-5", "@daily", "@every 6h", "0 0 1 JAN *"])
def test_valid_cron_expressions(expr: str) -> None:
    assert PipelineConfig(schedules=(expr,)).schedules == (expr,)


@pytest.mark.parametrize("expr", ["", "0 2 * *", "0 2 * * * *", "nightly", "0 2 * * ;rm"])
def test_invalid_cron_expressions(expr: str) -> None:
    with pytest.raises(ConfigError, match="--cron"):
        config_for("generic", schedules=(expr,))


def test_pipeline_config_is_frozen_and_forbids_unknown_fields() -> None:
    with pytest.raises(ConfigError, match="--colour: Extra inputs are not permitted"):
        config_for("generic", colour="blue")
    cfg = PipelineConfig()
    with pytest.raises(ValueError, match="frozen"):
        cfg.suite = "full"  # type: ignore[misc]


# ---- the same template runs locally ------------------------------------------------------------------
def test_the_compiled_template_is_accepted_by_the_local_executor(template: dict[str, Any]) -> None:
    manifest = pytest.importorskip("kaic.executor.manifest")
    model = manifest.prepare(template, {"profile": "local"}, "kaic-conformance.workflowtemplate.yaml")
    assert model.entrypoint == "conformance"
    assert model.on_exit == "teardown"
