"""Every manifest kaic generates (kaic.deploy_check.generated: the real builders with sample profiles and
a run id) is valid for what receives it, and every pod spec among them meets Pod Security "restricted".
Each validator is also shown to reject a broken manifest, so a pass means something."""

from __future__ import annotations

import copy
import functools

import pytest

from kaic.cluster import Obj
from kaic.deploy_check import ARGO_SCHEMA, KSERVE_CRD, pss
from kaic.deploy_check.generated import CLUSTER_PROFILES, SAMPLE_RUN_ID, generated_manifests
from kaic.deploy_check.validate import SkippedError, validate
from tests.conftest import shared_path

pytestmark = pytest.mark.unit


@functools.cache
def _manifests() -> tuple[tuple[str, Obj], ...]:
    return tuple(generated_manifests())


def _one(kind: str) -> Obj:
    return copy.deepcopy(next(o for _, o in _manifests() if o["kind"] == kind))


def _validate(obj: Obj) -> list[str]:
    try:
        return validate(obj)[1]
    except SkippedError as exc:
        pytest.skip(str(exc))


def test_the_list_covers_every_builder_and_profile() -> None:
    labels = [label for label, _ in _manifests()]
    kinds = {o["kind"] for _, o in _manifests()}
    assert kinds == {"WorkflowTemplate", "CronWorkflow", "Pod", "Job", "Service", "TrainJob", "InferenceService",
                     "HTTPRoute"}
    for step in ("provision", "data", "train", "serve", "report", "teardown"):
        assert f"workflow step pod {step}" in labels
    for profile in CLUSTER_PROFILES:
        assert sum(label.endswith(f"({profile})") for label in labels) == 12


def test_kaic_labels_every_object_it_creates_with_the_run_id() -> None:
    for label, obj in _manifests():
        if obj["kind"] in ("WorkflowTemplate", "CronWorkflow") or label.startswith("workflow step pod"):
            continue  # Argo's objects: the run id is the workflow's name
        assert obj["metadata"]["labels"]["kaic.dev/run-id"] == SAMPLE_RUN_ID, label


@pytest.mark.parametrize("index", range(len(_manifests())), ids=[label for label, _ in _manifests()])
def test_generated_manifest_is_valid(index: int) -> None:
    label, obj = _manifests()[index]
    if obj["kind"] in ("WorkflowTemplate", "CronWorkflow"):
        shared_path("reference", "argo-workflows", "schema.json")
    if obj["kind"] == "InferenceService":
        shared_path("reference", "kserve", "serving.kserve.io_inferenceservices.crd.yaml")
    assert _validate(obj) == [], label


def test_kubernetes_check_rejects_an_unknown_field_and_a_bad_label() -> None:
    job = _one("Job")
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1
    assert any("gpus" in p for p in _validate(job))
    svc = _one("Service")
    svc["metadata"]["labels"]["kaic.dev/run-id"] = "{{workflow.name}}"
    assert _validate(svc) == ["metadata.labels.kaic.dev/run-id: '{{workflow.name}}' is not a valid label value"]
    svc = _one("Service")
    svc["metadata"]["name"] = "1-starts-with-a-digit"
    assert _validate(svc) == ["metadata.name: '1-starts-with-a-digit' is not a DNS-1035 label (a Service name)"]


def test_argo_check_rejects_a_misplaced_field() -> None:
    assert ARGO_SCHEMA.parent.exists() or pytest.skip("../shared absent")
    wt = _one("WorkflowTemplate")
    wt["spec"]["templates"][1]["container"]["retryStrategy"] = {"limit": 1}
    assert _validate(wt)


def test_kserve_check_rejects_an_unknown_field() -> None:
    assert KSERVE_CRD.exists() or pytest.skip("../shared absent")
    isvc = _one("InferenceService")
    isvc["spec"]["predictor"]["replicas"] = 2
    assert any("replicas" in p for p in _validate(isvc))


def test_http_route_check_rejects_what_the_gateway_api_would() -> None:
    route = _one("HTTPRoute")  # the Gateway routing probe's: rule 2 is the weighted split
    route["spec"]["rules"][1]["backendRefs"][0]["weight"] = 2_000_000
    route["spec"]["rules"][1]["backendRefs"][1]["namespace"] = "elsewhere"
    route["spec"]["rules"][0]["matches"][0]["path"]["value"] = "kaic-gateway"
    problems = _validate(route)
    assert len(problems) == 3, problems


def test_train_job_check_rejects_an_unknown_trainer_field() -> None:
    tj = _one("TrainJob")
    tj["spec"]["trainer"]["replicas"] = 2
    tj["spec"]["trainer"]["env"].append({"name": "X", "valueFrom": {"bogus": {}}})
    problems = _validate(tj)
    assert any("replicas: not a field of Trainer" in p for p in problems)
    assert any("spec.trainer (as a container)" in p for p in problems)


def test_every_generated_pod_spec_meets_the_restricted_profile() -> None:
    checked = 0
    for label, obj in _manifests():
        spec = pss.pod_spec_of(obj)
        if spec is None:
            # TrainJob: its pods come from the platform's ClusterTrainingRuntime; the rest carry no pod.
            assert obj["kind"] in ("WorkflowTemplate", "CronWorkflow", "Service", "HTTPRoute", "TrainJob"), label
            continue
        assert pss.restricted(spec) == [], label
        checked += 1
    assert checked == 6 + 5 * 7  # step pods; per profile 4 probe pods (exporter load too), the gateway backend,
    # the Job and the predictor


RESTRICTED_POD = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                  "containers": [{"name": "c", "image": "x", "securityContext": {
                      "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}


@pytest.mark.parametrize(("change", "expected"), [
    (lambda p: p.__setitem__("hostNetwork", True), "spec.hostNetwork: true"),
    (lambda p: p["containers"][0]["securityContext"].__setitem__("privileged", True), "privileged: true"),
    (lambda p: p["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    (lambda p: p["containers"][0]["securityContext"]["capabilities"].__setitem__("drop", ["NET_RAW"]),
     "drop: must include ALL"),
    (lambda p: p["containers"][0]["securityContext"]["capabilities"].__setitem__("add", ["SYS_ADMIN"]),
     "add: SYS_ADMIN"),
    (lambda p: p["securityContext"].pop("runAsNonRoot"), "runAsNonRoot: must be true"),
    (lambda p: p["securityContext"].__setitem__("seccompProfile", {"type": "Unconfined"}), "seccompProfile.type"),
    (lambda p: p.__setitem__("volumes", [{"name": "h", "hostPath": {"path": "/"}}]), "hostPath volumes"),
    (lambda p: p["containers"][0].__setitem__("ports", [{"containerPort": 80, "hostPort": 80}]), "hostPort: 80"),
])
def test_restricted_check_catches_each_rule(change: object, expected: str) -> None:
    pod = copy.deepcopy(RESTRICTED_POD)
    assert pss.restricted(pod) == []
    change(pod)  # type: ignore[operator]
    problems = pss.restricted(pod)
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_container_level_settings_satisfy_the_profile_too() -> None:
    pod = copy.deepcopy(RESTRICTED_POD)
    pod.pop("securityContext")
    pod["containers"][0]["securityContext"].update(runAsNonRoot=True, seccompProfile={"type": "Localhost",
                                                                                      "localhostProfile": "p.json"})
    assert pss.restricted(pod) == []
