"""`KubeCluster`: the real API server through the official `kubernetes` client's `ApiClient`.

Raw REST calls (no generated models): objects stay plain dicts, every resource type is reachable by
group/version/plural, and every call goes through one retry loop (429/5xx/connection errors, bounded
attempts, exponential backoff with jitter, Retry-After honoured). The `kubernetes` package is imported
only when a cluster is used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from kaic.cluster import ApiResource, ClusterError, Obj, plural_for, split_group_version
from kaic.cluster.retry import (
    RETRYABLE_STATUS,
    RETRYABLE_STATUS_UNSAFE,
    RetriesExhaustedError,
    RetryableError,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)
from kaic.errors import ConfigError

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
FIELD_MANAGER = "kaic"


def resource_path(group_version: str, plural: str, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    path = base + (f"/namespaces/{quote(namespace, safe='')}" if namespace else "") + f"/{plural}"
    if name is not None:
        path += f"/{quote(name, safe='')}"
    if subresource:
        path += f"/{subresource}"
    return path


def parse_aggregated(doc: dict[str, Any]) -> list[ApiResource]:
    """An APIGroupDiscoveryList (aggregated discovery v2) -> resources; stale (unavailable) versions out."""
    out = []
    for item in doc.get("items") or []:
        group = (item.get("metadata") or {}).get("name", "")
        for v in item.get("versions") or []:
            if v.get("freshness") == "Stale":
                continue
            for r in v.get("resources") or []:
                kind = (r.get("responseKind") or {}).get("kind", "")
                out.append(ApiResource(group, v.get("version", ""), kind, r.get("resource", ""),
                                       r.get("scope") == "Namespaced"))
    return out


def parse_resource_list(doc: dict[str, Any]) -> list[ApiResource]:
    """An APIResourceList (legacy discovery of one group/version) -> resources, subresources left out."""
    group, version = split_group_version(doc.get("groupVersion", ""))
    return [ApiResource(group, version, r.get("kind", ""), r["name"], bool(r.get("namespaced")))
            for r in doc.get("resources") or [] if "/" not in r.get("name", "/")]


class KubeCluster:
    """ClusterClient over a live API server."""

    def __init__(self, api_client: Any, policy: RetryPolicy | None = None, request_timeout_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._api = api_client
        self.policy = policy or RetryPolicy()
        self.discovery_policy = RetryPolicy(attempts=min(3, self.policy.attempts), base_s=self.policy.base_s,
                                            cap_s=self.policy.cap_s)
        self.request_timeout_s = request_timeout_s
        self._sleep = sleep
        self._resources: list[ApiResource] | None = None
        self.discovery_errors: dict[str, str] = {}  # group/version -> why its discovery failed

    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None,
                in_cluster: bool = False) -> KubeCluster:
        from kubernetes import client, config

        cfg = client.Configuration()
        source = "in-cluster service account" if in_cluster else f"kubeconfig {kubeconfig or '(default)'}"
        if kubeconfig and not in_cluster:
            from pathlib import Path

            from kaic.safeload import load_yaml_file

            doc = load_yaml_file(Path(kubeconfig), source)  # bounded: size, depth, aliases, binary
            if not isinstance(doc, dict):
                raise ConfigError(f"{source}: expected a kubeconfig map, got {type(doc).__name__}")
        try:
            if in_cluster:
                config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            else:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context, client_configuration=cfg)
        except (config.ConfigException, OSError, ValueError, TypeError) as exc:
            ctx = f" context {context!r}" if context else ""
            raise ConfigError(f"{source}{ctx}: cannot load cluster configuration: {exc}") from None
        cfg.retries = False  # one retry loop, ours
        return cls(client.ApiClient(cfg))

    @classmethod
    def for_host(cls, host: str, token: str | None = None, **kwargs: Any) -> KubeCluster:
        """A client for an API server URL (plain http for tests; a bearer token when given)."""
        from kubernetes import client

        cfg = client.Configuration(host=host)
        if token:
            cfg.api_key = {"BearerToken": token}
            cfg.api_key_prefix = {"BearerToken": "Bearer"}
        cfg.retries = False
        return cls(client.ApiClient(cfg), **kwargs)

    # -- HTTP ----------------------------------------------------------------------------------------
    def request(self, method: str, path: str, query: dict[str, str] | None = None, body: Any = None,
                content_type: str = "application/json", accept: str = "application/json",
                policy: RetryPolicy | None = None) -> tuple[int, bytes]:
        """One API call with retries; returns (status, body) for any status below 500 except 429."""
        import urllib3

        unsafe = method == "POST"
        retry_on = RETRYABLE_STATUS_UNSAFE if unsafe else RETRYABLE_STATUS
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type

        def once() -> tuple[int, bytes]:
            m, url, hdrs, data, _ = self._api.param_serialize(
                method, path, query_params=list((query or {}).items()), header_params=dict(headers),
                body=body, auth_settings=["BearerToken"])
            try:
                resp = self._api.call_api(m, url, header_params=hdrs, body=data,
                                          _request_timeout=self.request_timeout_s)
                payload = resp.read()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if unsafe and not isinstance(exc, urllib3.exceptions.NewConnectionError):
                    raise ClusterError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
                raise RetryableError(f"{type(exc).__name__}: {exc}") from None
            if resp.status in retry_on:
                raise RetryableError(f"HTTP {resp.status}", parse_retry_after(resp.getheader("Retry-After")),
                                     resp.status)
            return int(resp.status), bytes(payload or b"")

        try:
            status, data = call_with_retries(once, policy or self.policy, f"{method} {path}", self._sleep)
        except RetriesExhaustedError as exc:
            last = exc.last
            raise ClusterError(str(exc), last.status if isinstance(last, RetryableError) else None) from None
        return status, data

    def _json(self, method: str, path: str, ok: tuple[int, ...] = (), **kwargs: Any) -> dict[str, Any] | None:
        status, data = self.request(method, path, **kwargs)
        if status in ok:
            return None
        if status >= 400:
            raise ClusterError(f"{method} {path}: HTTP {status}: {_status_message(data)}", status)
        doc = json.loads(data) if data else {}
        return doc if isinstance(doc, dict) else {}

    # -- ClusterClient ------------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        return self._json("GET", "/version") or {}

    def api_resources(self) -> list[ApiResource]:
        if self._resources is None:
            self._resources = self._discover()
        return list(self._resources)

    def _discover(self) -> list[ApiResource]:
        out: list[ApiResource] = []
        for root in ("/api", "/apis"):
            doc = self._json("GET", root, accept=AGGREGATED, policy=self.discovery_policy) or {}
            if doc.get("kind") == "APIGroupDiscoveryList":
                out += parse_aggregated(doc)
                continue
            if root == "/api":
                versions = list(doc.get("versions") or [])
            else:
                versions = [v["groupVersion"] for g in doc.get("groups") or []
                            for v in g.get("versions") or []]
            for gv in versions:
                path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
                try:
                    out += parse_resource_list(self._json("GET", path, policy=self.discovery_policy) or {})
                except ClusterError as exc:  # an unavailable aggregated API (e.g. a broken metrics server)
                    self.discovery_errors[gv] = str(exc)
        return out

    def list(self, group_version: str, plural: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[Obj]:
        path = resource_path(group_version, plural, namespace)
        query: dict[str, str] = {"limit": "500"}
        if label_selector:
            query["labelSelector"] = label_selector
        items: list[Obj] = []
        while True:
            doc = self._json("GET", path, ok=(404,), query=dict(query))
            if doc is None:
                return []  # the type is not served
            group_kind = str(doc.get("kind", "")).removesuffix("List")
            for item in doc.get("items") or []:
                items.append({"apiVersion": doc.get("apiVersion", group_version), "kind": group_kind, **item})
            token = (doc.get("metadata") or {}).get("continue")
            if not token:
                return items
            query["continue"] = token

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        return self._json("GET", resource_path(group_version, plural, namespace, name), ok=(404,))

    def _target(self, obj: Obj) -> tuple[str, str, str | None, str]:
        gv, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        resources = self.api_resources()
        namespaced = next((r.namespaced for r in resources if r.group_version == gv and r.kind == kind), True)
        meta = obj.get("metadata") or {}
        ns = (meta.get("namespace") or "default") if namespaced else None
        return gv, plural_for(resources, gv, kind), ns, str(meta.get("name", ""))

    def create(self, obj: Obj) -> Obj:
        gv, plural, ns, _ = self._target(obj)
        return self._json("POST", resource_path(gv, plural, ns), body=obj) or {}

    def apply(self, obj: Obj) -> Obj:
        """Server-side apply (create or update), kaic as the field manager."""
        gv, plural, ns, name = self._target(obj)
        return self._json("PATCH", resource_path(gv, plural, ns, name), body=obj,
                          content_type="application/apply-patch+yaml",
                          query={"fieldManager": FIELD_MANAGER, "force": "true"}) or {}

    def delete(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> None:
        self._json("DELETE", resource_path(group_version, plural, namespace, name), ok=(404,),
                   query={"propagationPolicy": "Background"})

    def delete_collection(self, group_version: str, plural: str, namespace: str | None,
                          label_selector: str) -> None:
        path = resource_path(group_version, plural, namespace)
        status, data = self.request("DELETE", path, query={"labelSelector": label_selector,
                                                           "propagationPolicy": "Background"})
        if status == 405:  # the type has no deletecollection: one by one
            for o in self.list(group_version, plural, namespace, label_selector):
                meta = o.get("metadata") or {}
                self.delete(group_version, plural, meta.get("name", ""), meta.get("namespace"))
        elif status >= 400 and status != 404:
            raise ClusterError(f"DELETE {path}: HTTP {status}: {_status_message(data)}", status)

    def pod_logs(self, name: str, namespace: str) -> str:
        path = resource_path("v1", "pods", namespace, name, "log")
        status, data = self.request("GET", path, accept="text/plain")
        if status >= 400:
            raise ClusterError(f"GET {path}: HTTP {status}: {_status_message(data)}", status)
        return data.decode(errors="replace")

    def pod_proxy_get(self, name: str, namespace: str, port: int, path: str) -> str:
        """GET `path` on the pod's `port` through the API server's pod proxy (RBAC: get pods/proxy)."""
        url = (f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}:{int(port)}/proxy/"
               + quote(path.lstrip("/"), safe="/"))
        status, data = self.request("GET", url, accept="text/plain", policy=self.discovery_policy)
        if status >= 400:
            raise ClusterError(f"GET {url}: HTTP {status}: {_status_message(data)}", status)
        return data.decode(errors="replace")


def _status_message(data: bytes) -> str:
    try:
        doc = json.loads(data)
        return str(doc.get("message") or doc)[:300]
    except (ValueError, AttributeError):
        return data[:300].decode(errors="replace")
