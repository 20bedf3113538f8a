"""What the READ probes look at: one gathering pass over a ClusterClient (live or snapshot), then pure reads.

`gather` lists every resource type in `kaic.cluster.known.READS` once. A type is *complete* when its
listing is known to be whole (a live list that succeeded; a snapshot file that lists the type in full),
so "no objects" can be told from "not looked at". `served(group, plural)` answers from discovery,
CRDs and APIServices with the same three-way honesty: served, absent or unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from kaic.cluster import ApiResource, ClusterClient, ClusterError, Obj
from kaic.cluster.known import READS, Known
from kaic.hardware.nodes import NodeInfo, node_info

State = Literal["served", "absent", "unknown"]


@dataclass
class Listing:
    items: list[Obj]
    complete: bool  # False: some objects may be missing (filtered snapshot, RBAC denied...)
    note: str = ""


@dataclass
class ClusterView:
    version: dict[str, Any]
    resources: list[ApiResource]
    groups_covered: set[str] | None  # discovery coverage; None: every group
    listings: dict[tuple[str, str], Listing] = field(default_factory=dict)
    source: str = "cluster"  # "cluster" or "snapshot <path>"

    def listing(self, group: str, plural: str) -> Listing:
        return self.listings.get((group, plural), Listing([], False, "not read"))

    def items(self, group: str, plural: str) -> list[Obj]:
        return self.listing(group, plural).items

    def complete(self, group: str, plural: str) -> bool:
        return self.listing(group, plural).complete

    # -- discovery -----------------------------------------------------------------------------------
    def crd_names(self) -> set[str]:
        return {str((c.get("metadata") or {}).get("name", "")) for c in self.items("apiextensions.k8s.io",
                                                                                  "customresourcedefinitions")}

    def served_versions(self, group: str, plural: str) -> set[str]:
        return {r.version for r in self.resources if r.group == group and r.plural == plural}

    def served(self, group: str, plural: str) -> State:
        if self.served_versions(group, plural) or f"{plural}.{group}" in self.crd_names():
            return "served"
        if self.groups_covered is None or group in self.groups_covered:
            return "absent"
        listed = self.complete("apiextensions.k8s.io", "customresourcedefinitions") and \
            self.complete("apiregistration.k8s.io", "apiservices")
        if listed and not self.group_has_apiservice(group):
            return "absent"  # every served group/version has an APIService (local ones too) or a CRD
        return "unknown"

    def group_has_apiservice(self, group: str) -> bool:
        return any(((a.get("spec") or {}).get("group") or "") == group
                   for a in self.items("apiregistration.k8s.io", "apiservices"))

    def groups_served(self, groups: Iterable[str]) -> dict[str, State]:
        out: dict[str, State] = {}
        for g in groups:
            plurals = {r.plural for r in self.resources if r.group == g} | {
                n.split(".", 1)[0] for n in self.crd_names() if n.split(".", 1)[1:] == [g]}
            if plurals:
                out[g] = "served"
            elif self.groups_covered is None or g in self.groups_covered:
                out[g] = "absent"
            else:
                out[g] = self.served(g, "*")
        return out

    # -- workloads -----------------------------------------------------------------------------------
    def workloads(self, name_pattern: str) -> list[tuple[str, int, int]]:
        """Deployments, StatefulSets and DaemonSets whose name matches: ('Kind ns/name', ready, desired)."""
        rx = re.compile(name_pattern)
        out = []
        for plural, kind in (("deployments", "Deployment"), ("statefulsets", "StatefulSet"),
                             ("daemonsets", "DaemonSet")):
            for o in self.items("apps", plural):
                meta, status = o.get("metadata") or {}, o.get("status") or {}
                if not rx.search(str(meta.get("name", ""))):
                    continue
                if kind != "DaemonSet":
                    ready, desired = status.get("readyReplicas", 0), (o.get("spec") or {}).get("replicas", 1)
                else:
                    ready, desired = status.get("numberReady", 0), status.get("desiredNumberScheduled", 0)
                out.append((f"{kind} {meta.get('namespace', '')}/{meta.get('name', '')}", int(ready or 0),
                            int(desired or 0)))
        return out

    def workloads_complete(self) -> bool:
        return self.complete("apps", "deployments") and self.complete("apps", "daemonsets")

    def observed_at(self) -> datetime | None:
        """When the cluster was looked at: now for a live cluster; for a snapshot, its newest node heartbeat
        (the capture time as the cluster itself recorded it), None when no node records one."""
        if not self.source.startswith("snapshot"):
            return datetime.now(UTC)
        beats = [parse_time(c.get("lastHeartbeatTime")) for n in self.items("", "nodes")
                 for c in (n.get("status") or {}).get("conditions") or []]
        known = [b for b in beats if b is not None]
        return max(known) if known else None

    def nodes(self) -> list[NodeInfo]:
        return [node_info(n) for n in self.items("", "nodes")]


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as Kubernetes writes it ('2026-11-29T12:00:00Z'); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    value = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())  # nanoseconds (Go) -> microseconds
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _read(client: ClusterClient, known: Known, version: str, covers: Any) -> Listing:
    r = known.resource
    gv = known.group_version(version)
    try:
        items = known.read(client, version)
    except ClusterError as exc:
        return Listing([], False, f"{r.plural}: {exc}")
    complete = bool(covers(gv, r.plural)) if covers is not None else True
    return Listing(items, complete)


def gather(client: ClusterClient, source: str = "cluster") -> ClusterView:
    """List every type the probes read, once. Never raises for a type that is not served."""
    resources = client.api_resources()
    covers = getattr(client, "covers", None)  # a snapshot says what it lists in full
    groups_covered = getattr(client, "groups_covered", None) if covers is not None else None
    view = ClusterView(client.version(), resources, groups_covered, source=source)
    for known in READS:
        r = known.resource
        versions = sorted(v.version for v in resources if v.group == r.group and v.plural == r.plural)
        version = r.version if r.version in versions or not versions else versions[-1]
        discovered = covers is None or groups_covered is None or r.group in groups_covered
        if discovered and not versions and r.group:  # discovery says the type is not served: none exist
            view.listings[(r.group, r.plural)] = Listing([], True, "type not served")
            continue
        view.listings[(r.group, r.plural)] = _read(client, known, version, covers)
    return view
