"""`FakeCluster`: an in-memory ClusterClient for tests, at the thinnest seam kaic can fake.

It validates every created object against the Kubernetes OpenAPI schemas (`kubernetes_validate`,
strict), and simulates what the active probes observe of a scheduler and a device plugin:
- a pod is Pending when created; on a later read it is Running if some node (matching its
  nodeSelector) has enough free allocatable for its extended-resource limits, else it stays Pending
  with an `Unschedulable` condition, as kube-scheduler reports it;
- a Kueue plain-pod group (`kueue.x-k8s.io/pod-group-name` + `pod-group-total-count`), or the pods of a
  Volcano or KAI PodGroup (annotation naming it, its `minMember`), is admitted only when all its pods
  exist and fit together; an over-sized group never gets a pod Running;
- a Running pod's log is what kaic's probe script prints: `UUID <id>` and `DEV /dev/nvidiaN` for each
  device it was given (or every device of its node when `leak_devices=True`), then the marker;
- an HTTP GET through the pod proxy reaches only a Running pod a test gave a responder (`serve_http`); any
  other answers 503, as the API server does when nothing listens.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kaic.cluster import ApiResource, ClusterError, Obj, plural_for, split_group_version
from kaic.cluster.known import ALL
from kaic.cluster.selectors import matcher

MARKER = "KAIC-PROBE-DONE"
GROUP_LABEL = "kueue.x-k8s.io/pod-group-name"
GROUP_SIZE = "kueue.x-k8s.io/pod-group-total-count"
POD_GROUP_ANNOTATIONS = ("scheduling.k8s.io/group-name", "pod-group-name")  # Volcano's, KAI's


Devices = dict[str, list[str]]  # resource name -> device ids
Names = list[str]


@dataclass
class _Pod:
    obj: Obj
    node: str | None = None
    devices: list[str] = field(default_factory=list)
    reads: int = 0


class FakeCluster:
    """In-memory cluster: nodes given as real Node objects; pods scheduled as described above."""

    def __init__(self, nodes: Sequence[Obj], objects: Sequence[Obj] = (), k8s_version: str = "1.35",
                 validate: bool = True, leak_devices: bool = False, share_devices: bool = False,
                 start_after_reads: int = 1) -> None:
        self.k8s_version = k8s_version
        self.validate = validate
        self.leak_devices = leak_devices  # pods without a request see the node's devices (a broken runtime)
        self.share_devices = share_devices  # every pod gets device 0 (a broken device plugin)
        self.start_after_reads = start_after_reads
        self.objects: dict[tuple[str, str, str, str], Obj] = {}
        self.pods: dict[tuple[str, str], _Pod] = {}
        self.created: list[Obj] = []  # every object as it was sent (for assertions on pod specs)
        self._uid = itertools.count(1)
        self.devices: dict[str, Devices] = {}  # node -> resource -> device ids
        self.http: dict[tuple[str, str], Callable[[int, str], str]] = {}  # (namespace, pod) -> (port, path) -> body
        for n in nodes:
            self._store(copy.deepcopy(n))
            name = n["metadata"]["name"]
            alloc = (n.get("status") or {}).get("allocatable") or {}
            self.devices[name] = {r: [f"GPU-{name}-{i}" for i in range(int(q))] for r, q in alloc.items()
                                  if "/" in r and str(q).isdigit()}
        for o in objects:
            self._store(copy.deepcopy(o))

    # -- storage ----------------------------------------------------------------------------------
    def _key(self, obj: Obj) -> tuple[str, str, str, str]:
        group, _ = split_group_version(str(obj.get("apiVersion", "")))
        meta = obj.get("metadata") or {}
        plural = plural_for(self.api_resources(), str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        return group, plural, str(meta.get("namespace") or ""), str(meta.get("name", ""))

    def _store(self, obj: Obj) -> None:
        self.objects[self._key(obj)] = obj

    # -- ClusterClient ---------------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        major, minor = self.k8s_version.split(".")
        return {"major": major, "minor": minor, "gitVersion": f"v{self.k8s_version}.0"}

    def api_resources(self) -> list[ApiResource]:
        return [k.resource for k in ALL]

    def list(self, group_version: str, plural: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[Obj]:
        group, _ = split_group_version(group_version)
        match = matcher(label_selector)
        if plural == "pods":
            self._tick()
        return [copy.deepcopy(o) for (g, p, ns, _), o in sorted(self.objects.items())
                if g == group and p == plural and (namespace is None or ns == namespace)
                and match((o.get("metadata") or {}).get("labels") or {})]

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        group, _ = split_group_version(group_version)
        if plural == "pods":
            pod = self.pods.get((namespace or "", name))
            if pod:
                pod.reads += 1
            self._tick()
        o = self.objects.get((group, plural, namespace or "", name))
        return copy.deepcopy(o) if o else None

    def create(self, obj: Obj) -> Obj:
        if self.validate:
            self._validate(obj)
        key = self._key(obj)
        if key in self.objects:
            raise ClusterError(f"{key[1]} {key[3]!r} already exists", 409)
        self.created.append(copy.deepcopy(obj))
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta.update(uid=f"uid-{next(self._uid)}", creationTimestamp=datetime.now(UTC).isoformat(),
                    resourceVersion="1")
        if stored.get("kind") == "Pod":
            stored["status"] = {"phase": "Pending"}
            self.pods[(key[2], key[3])] = _Pod(stored)
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def apply(self, obj: Obj) -> Obj:
        if self.validate:
            self._validate(obj)
        key = self._key(obj)
        if key not in self.objects:
            return self.create(obj)
        self.objects[key] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    def delete(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> None:
        group, _ = split_group_version(group_version)
        self.objects.pop((group, plural, namespace or "", name), None)
        if plural == "pods":
            self.pods.pop((namespace or "", name), None)

    def delete_collection(self, group_version: str, plural: str, namespace: str | None,
                          label_selector: str) -> None:
        for o in self.list(group_version, plural, namespace, label_selector):
            meta = o.get("metadata") or {}
            self.delete(group_version, plural, meta.get("name", ""), meta.get("namespace"))

    def pod_logs(self, name: str, namespace: str) -> str:
        pod = self.pods.get((namespace, name))
        if pod is None:
            raise ClusterError(f"pods {name!r} not found", 404)
        if pod.obj["status"]["phase"] != "Running":
            raise ClusterError(f"container \"probe\" in pod {name!r} is waiting to start", 400)
        devices = pod.devices
        if not devices and self.leak_devices and pod.node:
            devices = [d for ids in self.devices[pod.node].values() for d in ids]
        lines = [f"UUID {d}" for d in devices] + [f"DEV /dev/nvidia{d.rsplit('-', 1)[1]}" for d in devices]
        return "\n".join([*lines, MARKER, ""])

    def serve_http(self, namespace: str, name: str, responder: Callable[[int, str], str]) -> None:
        """Pod `namespace/name` answers a proxied GET with `responder(port, path)`."""
        self.http[(namespace, name)] = responder

    def pod_proxy_get(self, name: str, namespace: str, port: int, path: str) -> str:
        obj = self.objects.get(("", "pods", namespace, name))
        if obj is None:
            raise ClusterError(f"pods {name!r} not found", 404)
        responder = self.http.get((namespace, name))
        if (obj.get("status") or {}).get("phase") != "Running" or responder is None:
            raise ClusterError(f"error trying to reach service: dial tcp {namespace}/{name}:{port}: connect: "
                               "connection refused", 503)
        return responder(port, path)

    # -- simulation ------------------------------------------------------------------------------------
    def _validate(self, obj: Obj) -> None:
        import kubernetes_validate

        try:
            kubernetes_validate.validate(obj, self.k8s_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise ClusterError(f"{obj.get('kind')} {obj.get('metadata', {}).get('name')!r} is invalid: "
                               f"{exc.message}", 422) from None
        except kubernetes_validate.SchemaNotFoundError:
            pass  # a custom resource: the API server would check it against its CRD, which the fake lacks

    @staticmethod
    def _requests(pod: Obj) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in (pod.get("spec") or {}).get("containers") or []:
            for r, q in ((c.get("resources") or {}).get("limits") or {}).items():
                if "/" in r:
                    out[r] = out.get(r, 0) + int(q)
        return out

    def _free(self, node: str) -> Devices:
        used = {d for p in self.pods.values() if p.node == node for d in p.devices}
        return {r: [d for d in ids if d not in used] for r, ids in self.devices[node].items()}

    def _fits(self, pod: Obj, free: dict[str, Devices]) -> str | None:
        """A node with room for the pod (taking its devices from `free`), or None."""
        want = self._requests(pod)
        selector = (pod.get("spec") or {}).get("nodeSelector") or {}
        pinned = _pinned_nodes(pod)
        for node in sorted(free):
            labels = (self.objects[("", "nodes", "", node)].get("metadata") or {}).get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.items()) or (pinned is not None and node not in pinned):
                continue
            if all(len(free[node].get(r, [])) >= n or self.share_devices for r, n in want.items()):
                return node
        return None

    def _bind(self, pod: _Pod, node: str, free: dict[str, Devices]) -> None:
        pod.node = node
        for r, n in self._requests(pod.obj).items():
            pod.devices = self.devices[node][r][:n] if self.share_devices else free[node][r][:n]
            if not self.share_devices:
                free[node][r] = free[node][r][n:]
        pod.obj["spec"]["nodeName"] = node
        pod.obj["status"] = {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}]}

    def _unschedulable(self, pod: _Pod, message: str) -> None:
        pod.obj["status"] = {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}

    @staticmethod
    def _group_of(pod: Obj) -> str | None:
        meta = pod.get("metadata") or {}
        label = (meta.get("labels") or {}).get(GROUP_LABEL)
        if label:
            return str(label)
        names = [(meta.get("annotations") or {}).get(a) for a in POD_GROUP_ANNOTATIONS]
        return next((str(n) for n in names if n), None)

    def _group_size(self, pod: Obj, group: str) -> int:
        """Kueue's count annotation, or the named PodGroup's minMember (0 when it does not exist)."""
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(GROUP_LABEL):
            return int((meta.get("annotations") or {}).get(GROUP_SIZE, "0"))
        ns = str(meta.get("namespace") or "")
        found = [o for (_, p, n, name), o in self.objects.items() if p == "podgroups" and n == ns and name == group]
        return int((found[0].get("spec") or {}).get("minMember") or 0) if found else 0

    def _tick(self) -> None:
        free = {n: self._free(n) for n in self.devices}
        pending = [p for p in self.pods.values() if p.node is None and p.reads >= self.start_after_reads]
        groups: dict[str, list[_Pod]] = {}
        for p in pending:
            group = self._group_of(p.obj)
            if group:
                groups.setdefault(group, []).append(p)
                continue
            node = self._fits(p.obj, free)
            if node:
                self._bind(p, node, free)
            else:
                want = ", ".join(f"{r}" for r in self._requests(p.obj))
                self._unschedulable(p, f"0/{len(self.devices)} nodes are available: insufficient {want}")
        for group, members in groups.items():
            size = self._group_size(members[0].obj, group)
            trial = copy.deepcopy(free)
            placed = []
            for p in members:
                node = self._fits(p.obj, trial) if len(members) == size else None
                if node is None:
                    break
                for r, n in self._requests(p.obj).items():
                    trial[node][r] = trial[node][r][n:]
                placed.append((p, node))
            if len(placed) == size == len(members):
                for p, node in placed:
                    self._bind(p, node, free)
            else:
                for p in members:
                    self._unschedulable(p, f"pod group {group} of {size} not admitted: the whole group "
                                           "does not fit")


def _pinned_nodes(pod: Obj) -> set[str] | None:
    """Node names a required node affinity on `metadata.name` (matchFields, operator In) allows; None: any."""
    required = ((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    names: set[str] | None = None
    for term in required.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In":
                names = (names or set()) | set(f.get("values") or [])
    return names
