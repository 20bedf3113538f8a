"""The InferenceService and HTTPRoute builders: valid against KServe's CRD schema, labelled, profile-driven."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import yaml

from kaic.cluster import RUN_ID_LABEL
from kaic.profiles import load_profile
from steps.serve import isvc
from tests.conftest import shared_path

pytestmark = pytest.mark.unit

RUN = "kaic-20260101-000000-abc123"


@functools.cache
def _crd_schema() -> dict[str, Any]:
    path = shared_path("reference", "kserve", "serving.kserve.io_inferenceservices.crd.yaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(path.read_text(), Loader=loader)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    return strict(version["schema"]["openAPIV3Schema"])


def strict(schema: Any) -> Any:
    """Reject unknown fields the way the API server's strict field validation does: every object schema
    with `properties` and no `x-kubernetes-preserve-unknown-fields` gets additionalProperties: false."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft7Validator(_crd_schema())  # built once: checking the 2 MB schema is the slow part


def validate(obj: dict[str, Any]) -> None:
    _validator().validate(obj)


def _build(profile: str = "eks") -> dict[str, Any]:
    spec = isvc.IsvcSpec(
        isvc.isvc_name(RUN), "kaic", RUN, "digits", f"s3://kaic/objects/runs/{RUN}/model", "ghcr.io/kaic-dev/kaic:0.1.0"
    )
    return isvc.build_inference_service(spec, load_profile(profile))


@pytest.mark.parametrize("profile", ["local", "eks", "gke", "aks", "generic", "openshift"])
def test_inference_service_matches_the_crd_schema(profile: str) -> None:
    validate(_build(profile))


def test_schema_check_is_strict_enough_to_catch_a_typo() -> None:
    import jsonschema

    obj = _build()
    obj["spec"]["predictor"]["containers"][0]["imag"] = "typo"
    with pytest.raises(jsonschema.ValidationError, match="imag"):
        validate(obj)
    obj = _build()
    obj["spec"]["predictor"]["minReplicas"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        validate(obj)


def test_inference_service_carries_run_label_model_and_profile_scheduling() -> None:
    obj = _build("eks")
    pred = obj["spec"]["predictor"]
    c = pred["containers"][0]
    assert obj["metadata"]["labels"][RUN_ID_LABEL] == RUN
    assert pred["labels"][RUN_ID_LABEL] == RUN  # reaches the predictor pods
    assert {"name": "STORAGE_URI", "value": f"s3://kaic/objects/runs/{RUN}/model"} in c["env"]
    assert c["args"][:2] == ["--model-dir", isvc.MODEL_MOUNT]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pred["nodeSelector"] == {"karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia"}
    assert pred["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pred["minReplicas"] == pred["maxReplicas"] == 1


def test_cpu_profile_requests_no_accelerator() -> None:
    limits = _build("local")["spec"]["predictor"]["containers"][0]["resources"]["limits"]
    assert not any("/" in k for k in limits)


@pytest.mark.parametrize("run_id", [RUN, "KAIC_run.with.dots-" + "x" * 80, "123-numeric-start"])
def test_names_are_dns_1035_and_short(run_id: str) -> None:
    import re

    name = isvc.isvc_name(run_id)
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name), name
    assert len(name) <= 40


def test_ready_condition_and_internal_address() -> None:
    obj = _build()
    assert not isvc.isvc_ready(obj)
    assert "no status conditions" in isvc.isvc_not_ready_reason(obj)
    obj["status"] = {
        "conditions": [
            {"type": "PredictorReady", "status": "False", "reason": "ImagePullBackOff"},
            {"type": "Ready", "status": "False"},
        ]
    }
    assert not isvc.isvc_ready(obj)
    assert "ImagePullBackOff" in isvc.isvc_not_ready_reason(obj)
    obj["status"]["conditions"][1]["status"] = "True"
    assert isvc.isvc_ready(obj)
    name = obj["metadata"]["name"]
    assert isvc.isvc_internal_url(obj, "kaic") == f"http://{name}-predictor.kaic.svc.cluster.local"
    obj["status"]["address"] = {"url": "http://x.kaic.svc.cluster.local:8080"}
    assert isvc.isvc_internal_url(obj, "kaic") == "http://x.kaic.svc.cluster.local:8080"


def test_http_route_sends_the_model_path_to_the_predictor_only() -> None:
    """One backend: serve.gateway_route shows the model served through the Gateway; splits and matches are
    provision.gateway_routing's (tests/unit/test_provision_gateway.py)."""
    route = isvc.build_http_route("digits-r1", "kaic", RUN, "gateways/inference-gw", "digits")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["kind"] == "HTTPRoute"
    assert route["metadata"]["labels"][RUN_ID_LABEL] == RUN
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference-gw", "namespace": "gateways"}
    ]
    rule = route["spec"]["rules"][0]
    assert rule["matches"][0]["path"] == {"type": "PathPrefix", "value": "/v2/models/digits"}
    assert rule["backendRefs"] == [{"kind": "Service", "name": "digits-r1-predictor", "port": 80}]
    same_ns = isvc.build_http_route("digits-r1", "kaic", RUN, "gw", "digits")
    assert "namespace" not in same_ns["spec"]["parentRefs"][0]


def test_route_accepted_needs_every_parent_accepted_and_resolved() -> None:
    assert not isvc.route_accepted(None)
    ok = {"conditions": [{"type": "Accepted", "status": "True"}, {"type": "ResolvedRefs", "status": "True"}]}
    bad = {"conditions": [{"type": "Accepted", "status": "True"}, {"type": "ResolvedRefs", "status": "False"}]}
    assert isvc.route_accepted({"status": {"parents": [ok]}})
    assert not isvc.route_accepted({"status": {"parents": [ok, bad]}})


def test_gateway_address_from_status_and_http_listener() -> None:
    gw = {
        "spec": {
            "listeners": [
                {"name": "https", "port": 443, "protocol": "HTTPS"},
                {"name": "http", "port": 8080, "protocol": "HTTP"},
            ]
        },
        "status": {"addresses": [{"type": "IPAddress", "value": "10.0.0.7"}]},
    }
    assert isvc.gateway_address(gw) == "http://10.0.0.7:8080"
    gw["spec"]["listeners"][1]["port"] = 80
    assert isvc.gateway_address(gw) == "http://10.0.0.7"
    assert isvc.gateway_address({"spec": {}, "status": {}}) is None
