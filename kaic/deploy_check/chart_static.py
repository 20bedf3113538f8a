"""What can be checked in the chart without helm: Chart.yaml, the `.Values` paths the templates use, the
RBAC rule files as Kubernetes objects, image defaults against kaic/images.py, and the promises the chart
shares with the steps (the Secret's name and keys, the ServiceAccount, the generic profile's endpoints)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from kaic.cluster import Obj

SECRET_KEYS = ("endpoint", "accessKey", "secretKey")  # what the chart tells users to put in the Secret
VALUES_REF = re.compile(r"\$?\.Values\.([A-Za-z0-9_.]+)")


def chart_yaml(chart: Path) -> list[str]:
    from kaic import __version__

    doc = yaml.safe_load((chart / "Chart.yaml").read_text())
    out = []
    if doc.get("apiVersion") != "v2":
        out.append(f"Chart.yaml apiVersion: {doc.get('apiVersion')!r}, expected v2")
    if doc.get("name") != chart.name:
        out.append(f"Chart.yaml name: {doc.get('name')!r} differs from the folder {chart.name!r}")
    if not re.match(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$", str(doc.get("version", ""))):
        out.append(f"Chart.yaml version: {doc.get('version')!r} is not SemVer 2")
    if str(doc.get("appVersion")) != __version__:
        out.append(f"Chart.yaml appVersion: {doc.get('appVersion')!r}, kaic is {__version__}")
    return out


def _schema_has(root: dict[str, Any], path: list[str]) -> bool:
    node = root
    for part in path:
        props = node.get("properties") or {}
        if part not in props:
            return False
        node = props[part]
        ref = node.get("$ref")
        if ref:  # local refs only: "#/$defs/name"
            target: Any = root
            for key in str(ref).removeprefix("#/").split("/"):
                target = target[key]
            node = target
    return True


def template_value_refs(chart: Path, values_schema: dict[str, Any]) -> tuple[int, list[str]]:
    """(references checked, problems): each `.Values.a.b` in templates/ must be a path of the schema."""
    refs = 0
    out = []
    for tpl in sorted((chart / "templates").glob("*")):
        for n, line in enumerate(tpl.read_text().splitlines(), 1):
            for m in VALUES_REF.finditer(line):
                refs += 1
                if not _schema_has(values_schema, m.group(1).split(".")):
                    out.append(f"{tpl.name}:{n}: .Values.{m.group(1)} is not in values.schema.json")
    return refs, out


def rbac_files(chart: Path) -> list[str]:
    """Each rule file, wrapped in the Role/ClusterRole the templates make of it, against Kubernetes' schema."""
    from kaic.deploy_check.validate import kubernetes

    out = []
    for name, kind in (("steps-role", "Role"), ("argo-executor-role", "Role"), ("cluster-read", "ClusterRole")):
        rules = (yaml.safe_load((chart / "files" / "rbac" / f"{name}.yaml").read_text()) or {}).get("rules")
        if not rules:
            out.append(f"files/rbac/{name}.yaml: no rules (the template would render `rules: []`, or worse)")
            continue
        meta: dict[str, Any] = {"name": f"kaic-{name}"} | ({"namespace": "kaic"} if kind == "Role" else {})
        obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules}
        out += [f"files/rbac/{name}.yaml: {p}" for p in kubernetes(obj)]
        if kind == "Role" and any("nonResourceURLs" in r for r in rules):
            out.append(f"files/rbac/{name}.yaml: nonResourceURLs only work in a ClusterRole")
    return out


def images(values: dict[str, Any]) -> list[str]:
    from kaic import __version__
    from kaic.images import IMAGES

    refs = {i.ref for i in IMAGES}
    want = {
        "image": f"{values['image']['repository']}:{values['image']['tag']}",
        "mlflow.image": f"{values['mlflow']['image']['repository']}:{values['mlflow']['image']['tag']}",
        "objectStore.minio.image": (f"{values['objectStore']['minio']['image']['repository']}:"
                                    f"{values['objectStore']['minio']['image']['tag']}"),
    }
    out = [f"values.yaml {k}: {v} is not in kaic/images.py (kaic images)" for k, v in want.items() if v not in refs]
    if values["image"]["tag"] != __version__:
        out.append(f"values.yaml image.tag: {values['image']['tag']!r}, kaic is {__version__}")
    return out


def _secret_refs(node: Any) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    if isinstance(node, dict):
        ref = node.get("secretKeyRef")
        if isinstance(ref, dict):
            out.append((str(ref.get("name")), str(ref.get("key"))))
        sref = node.get("secretRef")
        if isinstance(sref, dict):
            out.append((str(sref.get("name")), None))
        for v in node.values():
            out += _secret_refs(v)
    elif isinstance(node, list):
        for v in node:
            out += _secret_refs(v)
    return out


def secret_promises(values: dict[str, Any], manifests: list[tuple[str, Obj]]) -> tuple[int, list[str]]:
    """Every Secret a generated manifest reads is the chart's credentials Secret, by a key the chart documents."""
    name = values["objectStore"]["credentialsSecret"]
    out, n = [], 0
    for label, obj in manifests:
        for secret, key in _secret_refs(obj):
            n += 1
            if secret != name:
                out.append(f"{label}: reads Secret {secret!r}, the chart documents {name!r}")
            elif key is None:
                out.append(f"{label}: envFrom Secret {secret!r} (its keys are not environment variable names)")
            elif key not in SECRET_KEYS:
                out.append(f"{label}: reads key {key!r} of Secret {secret!r}; documented: {', '.join(SECRET_KEYS)}")
    return n, out


def service_account(values: dict[str, Any], manifests: list[tuple[str, Obj]]) -> list[str]:
    sa = values["steps"]["serviceAccount"]["name"]
    out = []
    for label, obj in manifests:
        for node in (obj.get("spec") or {}, ((obj.get("spec") or {}).get("template") or {}).get("spec") or {},
                     (obj.get("spec") or {}).get("predictor") or {}):
            used = node.get("serviceAccountName") if isinstance(node, dict) else None
            if used and used != sa:
                out.append(f"{label}: serviceAccountName {used!r}, the chart creates {sa!r}")
    return out


def profile_endpoints(values: dict[str, Any], release: str = "kaic", namespace: str = "kaic") -> list[str]:
    """The generic profile (the compiled workflow's defaults) points at this chart installed as
    `helm install kaic charts/kaic -n kaic`: its MLflow Service and its bucket."""
    from kaic.profiles import load_profile

    p = load_profile("generic")
    out = []
    if values["mlflow"]["enabled"]:
        want = f"http://{release}-mlflow.{namespace}.svc:{values['mlflow']['service']['port']}"
        if p.endpoints.mlflow_uri != want:
            out.append(f"generic profile endpoints.mlflow_uri {p.endpoints.mlflow_uri!r} != the chart's {want!r}")
    for field, uri in (("storage.object_store", p.storage.object_store), ("storage.results", p.storage.results)):
        bucket = urlparse(uri or "").netloc
        if bucket != values["objectStore"]["bucket"]:
            out.append(f"generic profile {field} bucket {bucket!r} != values objectStore.bucket "
                       f"{values['objectStore']['bucket']!r}")
    return out
