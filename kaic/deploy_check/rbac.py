"""RBAC coverage: the API calls the steps make (recorded through the cluster seam) against the chart's
Role (namespaced, the kaic namespace) and ClusterRole (cluster-scoped and cross-namespace reads).

A call in the kaic namespace must be granted by the Role (the ClusterRole is optional in values); any
other call (cluster-scoped, all namespaces, another namespace) by the ClusterRole. Every (group, resource,
verb[, name]) a rule grants must be needed by some recorded call of its scope: nothing more.
Argo's executor rules (files/rbac/argo-executor-role.yaml) are Argo's need and left out of both checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kaic.cluster import ApiResource, Obj, RecordingCluster, plural_for, split_group_version

# What discovery reads on the wire (kaic.cluster.kube: /version, /api and /apis, aggregated or per group).
DISCOVERY_URLS = {"/version": ("/version",), "/apis": ("/api", "/api/*", "/apis", "/apis/*")}


@dataclass(frozen=True)
class ScopedCall:
    verb: str
    group: str
    resource: str  # plural, or a subresource ("pods/log", "pods/proxy"); a non-resource URL starts with "/"
    namespace: str | None  # None: cluster-scoped or all namespaces
    name: str | None = None

    def __lt__(self, other: ScopedCall) -> bool:  # sortable although namespace and name may be None
        return self._key() < other._key()

    def _key(self) -> tuple[str, str, str, str, str]:
        return self.verb, self.group, self.resource, self.namespace or "", self.name or ""

    def __str__(self) -> str:
        if self.resource.startswith("/"):
            return f"{self.verb} {self.resource}"
        where = f" in {self.namespace}" if self.namespace else " (cluster-wide)"
        name = f" {self.name}" if self.name else ""
        return f"{self.verb} {self.resource}{'.' + self.group if self.group else ''}{name}{where}"


@dataclass
class ScopedRecorder(RecordingCluster):
    """RecordingCluster that also keeps each call's namespace and object name (RBAC scope)."""

    scoped: set[ScopedCall] = field(default_factory=set)

    def _add(self, verb: str, group_version: str, plural: str, namespace: str | None, name: str | None) -> None:
        group, _ = split_group_version(group_version)
        self.scoped.add(ScopedCall(verb, group, plural, namespace or None, name))

    def _resources(self) -> list[ApiResource]:
        return self.inner.api_resources()

    def version(self) -> dict[str, Any]:
        self.scoped.add(ScopedCall("get", "", "/version", None))
        return super().version()

    def api_resources(self) -> list[ApiResource]:
        self.scoped.add(ScopedCall("get", "", "/apis", None))
        return super().api_resources()

    def list(self, group_version: str, plural: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[Obj]:
        self._add("list", group_version, plural, namespace, None)
        return super().list(group_version, plural, namespace, label_selector)

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        self._add("get", group_version, plural, namespace, name)
        return super().get(group_version, plural, name, namespace)

    def _obj(self, verbs: tuple[str, ...], obj: Obj) -> None:
        gv = str(obj.get("apiVersion", ""))
        plural = plural_for(self._resources(), gv, str(obj.get("kind", "")))
        meta = obj.get("metadata") or {}
        for verb in verbs:  # a create cannot be limited by resourceNames: no name recorded
            self._add(verb, gv, plural, meta.get("namespace"), meta.get("name") if verb == "patch" else None)

    def create(self, obj: Obj) -> Obj:
        self._obj(("create",), obj)
        return super().create(obj)

    def apply(self, obj: Obj) -> Obj:
        self._obj(("patch", "create"), obj)
        return super().apply(obj)

    def delete(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> None:
        self._add("delete", group_version, plural, namespace, name)
        super().delete(group_version, plural, name, namespace)

    def delete_collection(self, group_version: str, plural: str, namespace: str | None,
                          label_selector: str) -> None:
        self._add("deletecollection", group_version, plural, namespace, None)
        super().delete_collection(group_version, plural, namespace, label_selector)

    def pod_logs(self, name: str, namespace: str) -> str:
        self._add("get", "v1", "pods/log", namespace, name)
        return super().pod_logs(name, namespace)

    def pod_proxy_get(self, name: str, namespace: str, port: int, path: str) -> str:
        self._add("get", "v1", "pods/proxy", namespace, name)
        return super().pod_proxy_get(name, namespace, port, path)


def load_rules(path: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text()) or {}
    rules = doc.get("rules") or []
    if not isinstance(rules, list):
        raise ValueError(f"{path}: rules is not a list")
    return rules


def _grants(rule: dict[str, Any], call: ScopedCall) -> bool:
    verbs = rule.get("verbs") or []
    if call.verb not in verbs and "*" not in verbs:
        return False
    if call.resource.startswith("/"):
        urls = rule.get("nonResourceURLs") or []
        return all(u in urls for u in DISCOVERY_URLS.get(call.resource, (call.resource,)))
    groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
    if (call.group not in groups and "*" not in groups) or (call.resource not in resources and "*" not in resources):
        return False
    names = rule.get("resourceNames")
    return not names or call.name in names


def granted(rules: list[dict[str, Any]], call: ScopedCall) -> bool:
    return any(_grants(r, call) for r in rules)


def _permissions(rule: dict[str, Any]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(verb, group, resource-or-URL, resourceNames) triples a rule grants."""
    names = tuple(rule.get("resourceNames") or ())
    if rule.get("nonResourceURLs"):
        return [(v, "", u, ()) for v in rule.get("verbs") or [] for u in rule["nonResourceURLs"]]
    return [(v, g, r, names) for v in rule.get("verbs") or [] for g in rule.get("apiGroups") or []
            for r in rule.get("resources") or []]


def _needed(perm: tuple[str, str, str, tuple[str, ...]], calls: set[ScopedCall]) -> bool:
    verb, group, resource, names = perm
    for c in calls:
        if c.verb != verb:
            continue
        if resource.startswith("/"):
            if c.resource.startswith("/") and resource in DISCOVERY_URLS.get(c.resource, (c.resource,)):
                return True
        elif (c.group, c.resource) == (group, resource) and (not names or c.name in names):
            return True
    return False


@dataclass
class Coverage:
    missing_role: list[ScopedCall]  # kaic-namespace calls the Role does not grant
    missing_cluster: list[ScopedCall]  # other calls the ClusterRole does not grant
    unused_role: list[str]  # Role permissions no kaic-namespace call needs
    unused_cluster: list[str]  # ClusterRole permissions no other call needs

    @property
    def ok(self) -> bool:
        return not (self.missing_role or self.missing_cluster or self.unused_role or self.unused_cluster)

    def problems(self) -> list[str]:
        return ([f"Role does not grant: {c}" for c in self.missing_role]
                + [f"ClusterRole does not grant: {c}" for c in self.missing_cluster]
                + [f"Role grants what no step calls: {p}" for p in self.unused_role]
                + [f"ClusterRole grants what no step calls: {p}" for p in self.unused_cluster])


def coverage(calls: set[ScopedCall], role: list[dict[str, Any]], cluster: list[dict[str, Any]],
             namespace: str) -> Coverage:
    local = {c for c in calls if c.namespace == namespace}
    other = calls - local
    unused_role = sorted({f"{v} {r}{'.' + g if g else ''}{' ' + ','.join(n) if n else ''}"
                          for rule in role for (v, g, r, n) in _permissions(rule)
                          if not _needed((v, g, r, n), local)})
    unused_cluster = sorted({f"{v} {r}{'.' + g if g else ''}{' ' + ','.join(n) if n else ''}"
                             for rule in cluster for (v, g, r, n) in _permissions(rule)
                             if not _needed((v, g, r, n), other)})
    return Coverage(sorted(c for c in local if not granted(role, c)),
                    sorted(c for c in other if not granted(cluster, c)), unused_role, unused_cluster)

