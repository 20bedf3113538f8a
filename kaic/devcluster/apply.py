"""Apply manifests to the dev cluster (server-side apply through the dynamic client) and wait on them."""

from __future__ import annotations

import hashlib
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

FIELD_MANAGER = "kaic-devcluster"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def api_client(kubeconfig: Path) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return api


def load_documents(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every YAML document (not empty, not a List wrapper) of `paths`."""
    for path in paths:
        for doc in yaml.load_all(path.read_text(), Loader=_LOADER):
            if not doc:
                continue
            if doc.get("kind", "").endswith("List") and "items" in doc:
                yield from doc["items"]
            else:
                yield doc


def cached_documents(paths: list[Path], cache: Path) -> list[dict[str, Any]]:
    """load_documents, kept as JSON under `cache`: the module files are immutable (their folder names carry
    the version), and Argo's full CRDs take seconds to parse as YAML, JSON a fraction of that."""
    key = hashlib.sha256("\n".join(str(p) for p in paths).encode()).hexdigest()[:16]
    cached = cache / f"manifests-{key}.json"
    if cached.is_file():
        docs: list[dict[str, Any]] = json.loads(cached.read_text())
        return docs
    docs = list(load_documents(paths))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps(docs, separators=(",", ":")))
    tmp.replace(cached)
    return docs


class Applier:
    """Server-side apply of arbitrary objects; rediscovers kinds after CRDs are added."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self._dyn: dynamic.DynamicClient | None = None

    @property
    def dyn(self) -> dynamic.DynamicClient:
        if self._dyn is None:
            self._dyn = dynamic.DynamicClient(self.api)  # type: ignore[no-untyped-call]
        return self._dyn

    def refresh(self) -> None:
        self._dyn = None

    def resource(self, api_version: str, kind: str) -> Any:
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def apply(self, obj: dict[str, Any]) -> Any:
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        kwargs: dict[str, Any] = {"body": obj, "name": meta["name"], "field_manager": FIELD_MANAGER,
                                  "force_conflicts": True}
        if res.namespaced:
            kwargs["namespace"] = meta.get("namespace", "default")
        return res.server_side_apply(**kwargs)

    def create(self, obj: dict[str, Any]) -> Any:
        """Create (an object whose status must be set at creation, like a Node); an existing one is kept."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        namespace = obj["metadata"].get("namespace", "default") if res.namespaced else None
        try:
            return res.create(body=obj, namespace=namespace)
        except ApiException as exc:
            if exc.status != 409:
                raise
            return res.get(name=obj["metadata"]["name"], namespace=namespace)

    def apply_all(self, objs: Iterable[dict[str, Any]]) -> int:
        count = 0
        for obj in objs:
            self.apply(obj)
            count += 1
        return count


def create_crds(api: client.ApiClient, crds: list[dict[str, Any]]) -> None:
    """POST each CRD as it is (an existing one is kept). Plain HTTP: Argo's full CRDs are over 1 MB of JSON
    each, and the client's model round trip of the answer would cost seconds for nothing."""
    cfg = api.configuration
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "Authorization": cfg.api_key["BearerToken"]}
    url = f"{cfg.host}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for crd in crds:
        request = urllib.request.Request(url, data=json.dumps(crd).encode(), method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=300, context=context) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise RuntimeError(f"creating CRD {crd['metadata']['name']}: {exc.code} {exc.read()[:500]!r}") from exc


def wait_crds_established(api: client.ApiClient, names: list[str], timeout: float = 120.0) -> None:
    ext: Any = client.ApiextensionsV1Api(api)  # the models' Optional fields: read as Any
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for name in sorted(pending):
            crd = ext.read_custom_resource_definition(name)
            conditions = {c.type: c.status for c in (crd.status.conditions or [])}
            if conditions.get("Established") == "True":
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"CRDs not Established within {timeout:.0f} s: {', '.join(sorted(pending))}")
        if pending:
            time.sleep(0.5)


def wait_nodes_ready(api: client.ApiClient, names: list[str], timeout: float = 300.0) -> None:
    core: Any = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        ready = {n.metadata.name for n in core.list_node().items
                 if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))}
        missing = sorted(set(names) - ready)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nodes not Ready within {timeout:.0f} s: {', '.join(missing)}")
        time.sleep(0.5)
