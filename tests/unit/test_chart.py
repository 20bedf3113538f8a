"""The Helm chart without helm: values (merged as helm merges) against values.schema.json, image defaults
against kaic/images.py, the promises the chart shares with the steps, and the chart's copy of the compiled
workflows (the check that it is stale)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from kaic.deploy_check import CHART, chart_files, chart_static, values
from kaic.deploy_check.generated import generated_manifests

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def schema() -> dict:
    return values.schema(CHART)


def test_merge_is_helms_coalesce() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": {"f": 1}}
    out = values.merge(base, {"a": {"c": [3]}, "d": None, "e": {"g": 2}})
    assert out == {"a": {"b": 1, "c": [3]}, "e": {"f": 1, "g": 2}}  # maps merge, lists replace, null deletes
    assert base["a"]["c"] == [1, 2]  # the base is not modified


def test_default_values_validate(schema: dict) -> None:
    assert values.problems(values.effective(CHART), schema) == []


@pytest.mark.parametrize("override", values.override_files(CHART), ids=lambda p: p.name)
def test_each_ci_values_file_validates_merged_over_the_defaults(override: Path, schema: dict) -> None:
    merged = values.effective(CHART, override)
    assert values.problems(merged, schema) == []
    assert merged != values.effective(CHART)  # the file changed something


def test_there_are_ci_values_files() -> None:
    assert {p.name for p in values.override_files(CHART)} >= {"external-s3-values.yaml", "minimal-values.yaml"}


@pytest.mark.parametrize(("override", "fragment"), [
    ({"objectStore": {"mode": "ftp"}}, "objectStore.mode: 'ftp' is not one of"),
    ({"mlflow": {"replicas": 2}}, "Additional properties are not allowed ('replicas'"),
    ({"mlflow": {"persistence": {"size": "10GB"}}}, "mlflow.persistence.size: '10GB' does not match"),
    ({"objectStore": {"credentialsSecret": "kaic-s3"}},
     "objectStore.credentialsSecret: 'kaic-object-store' was expected"),
    ({"steps": {"serviceAccount": {"name": "other"}}}, "steps.serviceAccount.name: 'kaic-steps' was expected"),
    ({"objectStore": {"mode": "external", "external": {"endpoint": ""}}}, "objectStore.external.endpoint"),
    ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy"),
])
def test_bad_values_are_rejected_naming_the_field(override: dict, fragment: str, schema: dict) -> None:
    problems = values.problems(values.merge(values.effective(CHART), override), schema)
    assert any(fragment in p for p in problems), problems


def test_image_defaults_agree_with_kaic_images() -> None:
    from kaic import __version__
    from kaic.images import IMAGES

    vals = values.effective(CHART)
    refs = {i.ref for i in IMAGES}
    assert f"{vals['image']['repository']}:{vals['image']['tag']}" in refs
    assert f"{vals['mlflow']['image']['repository']}:{vals['mlflow']['image']['tag']}" in refs
    minio = vals["objectStore"]["minio"]["image"]
    assert f"{minio['repository']}:{minio['tag']}" in refs
    assert vals["image"]["tag"] == __version__
    assert chart_static.images(vals) == []
    bad = copy.deepcopy(vals)
    bad["mlflow"]["image"]["tag"] = "v0.0.1"
    assert chart_static.images(bad) == ["values.yaml mlflow.image: ghcr.io/mlflow/mlflow:v0.0.1 is not in "
                                        "kaic/images.py (kaic images)"]


def test_steps_read_the_secret_the_chart_documents() -> None:
    from pipelines.conformance import OBJECT_STORE_SECRET

    vals = values.effective(CHART)
    assert vals["objectStore"]["credentialsSecret"] == OBJECT_STORE_SECRET == "kaic-object-store"
    n, problems = chart_static.secret_promises(vals, generated_manifests(("eks",)))
    assert problems == []
    assert n >= 3 * 7  # 6 step pods + the template itself + the training Job, 3 keys each
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    for key in chart_static.SECRET_KEYS:
        assert f"{key}=" in notes  # NOTES tells users how to create the Secret with each key


def test_a_manifest_reading_another_secret_or_key_is_reported() -> None:
    vals = values.effective(CHART)
    pod = {"spec": {"containers": [{"env": [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "kaic-s3", "key": "endpoint"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "kaic-object-store", "key": "region"}}}],
        "envFrom": [{"secretRef": {"name": "kaic-object-store"}}]}]}}
    _, problems = chart_static.secret_promises(vals, [("pod x", pod)])
    assert problems == ["pod x: reads Secret 'kaic-s3', the chart documents 'kaic-object-store'",
                        "pod x: reads key 'region' of Secret 'kaic-object-store'; documented: endpoint, accessKey, "
                        "secretKey",
                        "pod x: envFrom Secret 'kaic-object-store' (its keys are not environment variable names)"]


def test_chart_and_generic_profile_agree() -> None:
    vals = values.effective(CHART)
    assert chart_static.profile_endpoints(vals) == []
    assert chart_static.service_account(vals, generated_manifests(("generic",))) == []
    other = values.merge(vals, {"objectStore": {"bucket": "elsewhere"}})
    assert len(chart_static.profile_endpoints(other)) == 2  # object store and results URIs


def test_template_value_paths_exist_and_a_typo_is_caught(tmp_path: Path, schema: dict) -> None:
    refs, problems = chart_static.template_value_refs(CHART, schema)
    assert refs > 20
    assert problems == []
    chart = tmp_path / "kaic"
    shutil.copytree(CHART, chart)
    tpl = chart / "templates" / "mlflow.yaml"
    tpl.write_text(tpl.read_text().replace(".Values.mlflow.service.port", ".Values.mlflow.service.prot", 1))
    _, problems = chart_static.template_value_refs(chart, schema)
    assert len(problems) == 1
    assert ".Values.mlflow.service.prot is not in values.schema.json" in problems[0]


def test_chart_yaml_and_rbac_files_are_well_formed() -> None:
    assert chart_static.chart_yaml(CHART) == []
    assert chart_static.rbac_files(CHART) == []


def test_rbac_file_with_a_bad_field_is_reported(tmp_path: Path) -> None:
    chart = tmp_path / "kaic"
    shutil.copytree(CHART, chart)
    f = chart / "files" / "rbac" / "steps-role.yaml"
    doc = yaml.safe_load(f.read_text())
    doc["rules"][0]["verb"] = ["get"]
    f.write_text(yaml.safe_dump(doc))
    problems = chart_static.rbac_files(chart)
    assert len(problems) == 1
    assert problems[0].startswith("files/rbac/steps-role.yaml:")


def test_chart_workflows_are_current() -> None:
    assert chart_files.stale(CHART) == []


def test_stale_chart_copy_is_reported_with_a_diff(tmp_path: Path) -> None:
    chart = tmp_path / "kaic"
    shutil.copytree(CHART, chart)
    copy_file = chart / "files" / "workflows" / "kaic-conformance.workflowtemplate.yaml"
    copy_file.write_text(copy_file.read_text().replace("activeDeadlineSeconds: 21600", "activeDeadlineSeconds: 60"))
    diff = chart_files.stale(chart)
    assert "-  activeDeadlineSeconds: 60\n" in diff
    assert "+  activeDeadlineSeconds: 21600\n" in diff


def test_changed_compile_output_makes_the_copy_stale() -> None:
    expected = chart_files.compiled()
    assert chart_files.stale(CHART, expected) == []
    name = "kaic-conformance-nightly.cronworkflow.yaml"
    changed = {**expected, name: expected[name].replace("0 2 * * *", "0 3 * * *")}
    diff = chart_files.stale(CHART, changed)
    assert "+  - 0 3 * * *\n" in diff
    assert "-  - 0 2 * * *\n" in diff
    extra = {**expected, "new.yaml": "kind: X\n"}
    assert any("new.yaml" in line for line in chart_files.stale(CHART, extra))  # a new compiled file is missing
