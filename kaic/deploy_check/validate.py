"""Validators for generated manifests, each returning `problem` lines ([] = valid):

- Kubernetes built-in kinds: `kubernetes_validate` (OpenAPI schemas of K8S_VERSION, strict: unknown fields
  are errors), plus the name and label syntax the API server checks but the schemas do not encode;
- Argo kinds: Argo's JSON schema (`pipelines.manifests.schema_problems`) and Hera's model round trip;
- the InferenceService: KServe's CRD openAPIV3Schema, with unknown fields rejected as the API server's
  strict field validation would;
- HTTPRoute: structural checks of the Gateway API rules kaic relies on (no schema of it is vendored).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from kaic.cluster import Obj
from kaic.deploy_check import ARGO_SCHEMA, K8S_VERSION, KSERVE_CRD

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
ARGO_KINDS = ("WorkflowTemplate", "CronWorkflow", "Workflow")


class SkippedError(Exception):
    """A check that cannot run here (its reference is absent); the message says why."""


def kubernetes(obj: Obj) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top)"
        return [f"{where}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        what = f"{obj.get('apiVersion')} {obj.get('kind')}"
        raise SkippedError(f"no Kubernetes {K8S_VERSION} schema for {what}") from None
    return []


def _label_problems(labels: dict[str, Any], where: str) -> list[str]:
    out = []
    for key, value in labels.items():
        prefix, _, name = str(key).rpartition("/")
        if (prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix))) or len(name) > 63 \
                or not QUALIFIED_NAME.match(name):
            out.append(f"{where}.{key}: not a valid label key")
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            out.append(f"{where}.{key}: {value!r} is not a valid label value")
    return out


def names_and_labels(obj: Obj) -> list[str]:
    """What the API server validates beyond the schema: object name syntax and label syntax, everywhere."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    kind = obj.get("kind")
    out: list[str] = []
    if kind in ("Service",) and (len(name) > 63 or not DNS1035_LABEL.match(name)):
        out.append(f"metadata.name: {name!r} is not a DNS-1035 label (a Service name)")
    elif kind == "Job" and len(name) > 63:
        out.append(f"metadata.name: {name!r} is longer than 63 characters (the Job's pod label)")
    elif len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        out.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                sub = f"{path}.{k}" if path else str(k)
                if k in ("labels", "matchLabels", "nodeSelector") and isinstance(v, dict) \
                        and all(isinstance(x, str) for x in v.values()):
                    out.extend(_label_problems(v, sub))
                else:
                    walk(v, sub)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(obj, "")
    return out


@functools.cache
def _argo_schema(path: Path) -> dict[str, Any]:
    from pipelines.manifests import load_schema

    return load_schema(path)


def argo(obj: Obj, schema_path: Path = ARGO_SCHEMA) -> list[str]:
    from pipelines.manifests import roundtrip_problems, schema_problems

    out = [f"Hera round trip: {p}" for p in roundtrip_problems(obj)]
    if not schema_path.is_file():
        if out:
            return out
        raise SkippedError(f"Argo schema: {schema_path} absent (../shared absent)")
    return out + schema_problems(obj, _argo_schema(schema_path))


def strict_schema(schema: Any) -> Any:
    """Unknown fields rejected where the API server's strict field validation would reject them: every
    object schema with `properties` and no `x-kubernetes-preserve-unknown-fields`."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields") \
            and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@functools.cache
def _crd_validator(path: Path, version: str) -> Any:
    import jsonschema
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(path.read_text(), Loader=loader)
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(strict_schema(schema))


def crd(obj: Obj, path: Path = KSERVE_CRD) -> list[str]:
    if not path.is_file():
        raise SkippedError(f"CRD schema: {path} absent (../shared absent)")
    version = str(obj.get("apiVersion", "")).rpartition("/")[2]
    validator = _crd_validator(path, version)
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
                  for e in validator.iter_errors(obj))


def http_route(obj: Obj) -> list[str]:
    """Gateway API v1 HTTPRoute rules kaic's route depends on (limits from the v1 CRD's validation)."""
    out: list[str] = []
    if obj.get("apiVersion") != "gateway.networking.k8s.io/v1":
        out.append(f"apiVersion: {obj.get('apiVersion')!r}, expected gateway.networking.k8s.io/v1")
    spec = obj.get("spec") or {}
    ns = (obj.get("metadata") or {}).get("namespace")
    parents = spec.get("parentRefs") or []
    if not 1 <= len(parents) <= 32:
        out.append(f"spec.parentRefs: {len(parents)} entries, expected 1..32")
    for i, p in enumerate(parents):
        if not p.get("name"):
            out.append(f"spec.parentRefs[{i}].name: missing")
        if p.get("kind", "Gateway") != "Gateway" or p.get("group", "gateway.networking.k8s.io") != \
                "gateway.networking.k8s.io":
            out.append(f"spec.parentRefs[{i}]: not a Gateway")
    rules = spec.get("rules") or []
    if not 1 <= len(rules) <= 16:
        out.append(f"spec.rules: {len(rules)} entries, expected 1..16")
    allowed = {"matches", "backendRefs", "filters", "timeouts", "name", "retry", "sessionPersistence"}
    for i, r in enumerate(rules):
        out += [f"spec.rules[{i}].{k}: not a field of HTTPRouteRule" for k in r if k not in allowed]
        for j, m in enumerate(r.get("matches") or []):
            path = m.get("path") or {}
            if path.get("type", "PathPrefix") not in ("Exact", "PathPrefix", "RegularExpression"):
                out.append(f"spec.rules[{i}].matches[{j}].path.type: {path.get('type')!r}")
            if not str(path.get("value", "/")).startswith("/"):
                out.append(f"spec.rules[{i}].matches[{j}].path.value: must start with '/'")
        for j, b in enumerate(r.get("backendRefs") or []):
            where = f"spec.rules[{i}].backendRefs[{j}]"
            if b.get("kind", "Service") == "Service" and not isinstance(b.get("port"), int):
                out.append(f"{where}.port: required for a Service backend")
            elif isinstance(b.get("port"), int) and not 1 <= b["port"] <= 65535:
                out.append(f"{where}.port: {b['port']} out of range")
            if not 0 <= int(b.get("weight", 1)) <= 1_000_000:
                out.append(f"{where}.weight: {b.get('weight')} out of 0..1000000")
            if not DNS1035_LABEL.match(str(b.get("name", ""))):
                out.append(f"{where}.name: {b.get('name')!r} is not a Service name")
            if b.get("namespace") not in (None, ns):
                out.append(f"{where}.namespace: cross-namespace backend needs a ReferenceGrant")
    return out


TRAINER_FIELDS = {"image", "command", "args", "env", "numNodes", "resourcesPerNode", "numProcPerNode"}


def train_job(obj: Obj) -> list[str]:
    """Kubeflow Trainer v1alpha1 TrainJob: the fields kaic sets (no CRD schema is vendored), and the
    trainer's container parts (env, resources) through Kubernetes' Container schema."""
    out: list[str] = []
    spec = obj.get("spec") or {}
    ref = spec.get("runtimeRef") or {}
    if not ref.get("name") or ref.get("kind", "ClusterTrainingRuntime") not in ("ClusterTrainingRuntime",
                                                                                  "TrainingRuntime"):
        out.append("spec.runtimeRef: needs a name and kind ClusterTrainingRuntime or TrainingRuntime")
    trainer = spec.get("trainer") or {}
    out += [f"spec.trainer.{k}: not a field of Trainer (v1alpha1)" for k in trainer if k not in TRAINER_FIELDS]
    if int(trainer.get("numNodes", 1)) < 1:
        out.append("spec.trainer.numNodes: must be >= 1")
    container = {"name": "node", "image": trainer.get("image", "x"), "command": trainer.get("command", []),
                 "args": trainer.get("args", []), "env": trainer.get("env", []),
                 "resources": trainer.get("resourcesPerNode", {})}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer"}, "spec": {"containers": [container]}}
    out += [f"spec.trainer (as a container): {p}" for p in kubernetes(pod)]
    return out


def validate(obj: Obj) -> tuple[str, list[str]]:
    """(what it was checked against, problems) for any manifest kaic generates."""
    kind = str(obj.get("kind"))
    if kind in ARGO_KINDS:
        return "Argo JSON schema + Hera models", argo(obj)
    if kind == "InferenceService":
        return "KServe CRD schema (strict)", crd(obj) + names_and_labels(obj)
    if kind == "HTTPRoute":
        return "Gateway API structure (no schema)", http_route(obj) + names_and_labels(obj)
    if kind == "TrainJob":
        return "TrainJob structure + its container (Kubernetes)", train_job(obj) + names_and_labels(obj)
    return f"Kubernetes {K8S_VERSION} (strict)", kubernetes(obj) + names_and_labels(obj)
