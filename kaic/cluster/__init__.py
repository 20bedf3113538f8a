"""The cluster seam: the few verbs kaic's steps need from a Kubernetes API server.

Steps code against `ClusterClient` and receive an implementation:

- `kaic.cluster.kube.KubeCluster`: the real API server (official `kubernetes` client; in-cluster config
  or a kubeconfig/context; retries with backoff on 429/5xx/connection errors).
- `kaic.cluster.snapshot.SnapshotCluster`: a dump folder (`kaic snapshot`), read verbs only.
- `kaic.cluster.fake.FakeCluster`: tests; validates created objects against the Kubernetes schemas and
  simulates the scheduler's observable behaviour for the probes' pods.

Objects are plain dicts as the API server returns them (``apiVersion``, ``kind``, ``metadata``...).
Resources are addressed by ``group_version`` ("v1", "apps/v1", "resource.k8s.io/v1") and ``plural``
("pods", "deviceclasses"), which is exactly what Kubernetes RBAC authorizes.

Every object kaic creates carries the label ``kaic.dev/run-id=<run-id>`` (`labelled`), so teardown
deletes by selector (`delete_collection`).

RBAC coverage: wrap any client in `RecordingCluster` (or `record_calls(client)`) and run a step; its
`calls` set holds every `Call(verb, group_version, plural)` made, where `verb` is the Kubernetes RBAC verb
("get", "list", "create", "patch", "delete", "deletecollection"); pod logs are recorded as
``("get", "v1", "pods/log")``, an HTTP GET through the API server's pod proxy
(`pod_proxy_get`) as ``("get", "v1", "pods/proxy")``, and `apply` (server-side apply) as "patch" and "create".
`rbac_rules()` turns them into ``{(api_group, resource): {verbs}}``, which
the Helm chart's Role must cover. Discovery (`version`, `api_resources`) is recorded with the
non-resource verb "get" and plural "/version" or "/apis"; every authenticated user may do it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

RUN_ID_LABEL = "kaic.dev/run-id"

Obj = dict[str, Any]
T = TypeVar("T")


class ClusterError(Exception):
    """The API server answered with an error kaic cannot recover from (after retries)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ReadOnlyClusterError(ClusterError):
    """A write verb on a read-only cluster (a snapshot)."""


class DeadlineExceededError(TimeoutError):
    """A wait ran past its deadline; the message names what it waited for."""


DeadlineExceeded = DeadlineExceededError  # the short name


@dataclass(frozen=True)
class ApiResource:
    """One row of API discovery (`kubectl api-resources`)."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@runtime_checkable
class ClusterClient(Protocol):
    """What steps may ask of a cluster. Read verbs never raise for "absent": `get` returns None and
    `list` returns [] when the object or the resource type does not exist."""

    def version(self) -> dict[str, Any]: ...  # /version: {"major", "minor", "gitVersion", ...}
    def api_resources(self) -> list[ApiResource]: ...  # every served (group, version, kind)
    def list(self, group_version: str, plural: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[Obj]: ...  # namespace None: all namespaces
    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> Obj | None: ...
    def create(self, obj: Obj) -> Obj: ...  # namespace from obj.metadata.namespace; returns the stored object
    def apply(self, obj: Obj) -> Obj: ...  # create, or replace what is there
    def delete(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> None: ...
    def delete_collection(self, group_version: str, plural: str, namespace: str | None,
                          label_selector: str) -> None: ...
    def pod_logs(self, name: str, namespace: str) -> str: ...
    def pod_proxy_get(self, name: str, namespace: str, port: int, path: str) -> str: ...  # an HTTP GET on a pod


def labelled(obj: Obj, run_id: str) -> Obj:
    """A deep copy of `obj` carrying the run-id label (also on a pod template's metadata, if any)."""
    out = copy.deepcopy(obj)
    out.setdefault("metadata", {}).setdefault("labels", {})[RUN_ID_LABEL] = run_id
    template = out.get("spec", {}).get("template") if isinstance(out.get("spec"), dict) else None
    if isinstance(template, dict):
        template.setdefault("metadata", {}).setdefault("labels", {})[RUN_ID_LABEL] = run_id
    return out


def phase(obj: Obj | None) -> str:
    """status.phase of a pod (or any object that has one), "" when it has none yet."""
    return str(((obj or {}).get("status") or {}).get("phase", ""))


def conditions(obj: Obj | None) -> dict[str, Obj]:
    """status.conditions by type (the first of a type, should one repeat)."""
    out: dict[str, Obj] = {}
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        out.setdefault(str(c.get("type")), c)
    return out


def condition_true(obj: Obj | None, kind: str) -> bool:
    """Whether a condition of type `kind` says status "True"."""
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in ((obj or {}).get("status") or {}).get("conditions") or [])


def run_selector(run_id: str) -> str:
    return f"{RUN_ID_LABEL}={run_id}"


def split_group_version(group_version: str) -> tuple[str, str]:
    """'apps/v1' -> ('apps', 'v1'); 'v1' -> ('', 'v1')."""
    group, _, version = group_version.rpartition("/")
    return group, version


def wait_until(fn: Callable[[], T | None], deadline_s: float, what: str, interval_s: float = 1.0,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `fn` until it returns something other than None/False; raise DeadlineExceeded naming `what`."""
    end = clock() + deadline_s
    while True:
        value = fn()
        if value is not None and value is not False:
            return value
        left = end - clock()
        if left <= 0:
            raise DeadlineExceededError(f"timed out after {deadline_s:g}s waiting for {what}")
        sleep(min(interval_s, left))


@dataclass(frozen=True, order=True)
class Call:
    verb: str  # Kubernetes RBAC verb
    group_version: str
    plural: str


@dataclass
class RecordingCluster:
    """Wraps a ClusterClient and records every call as an RBAC (verb, group_version, plural)."""

    inner: ClusterClient
    calls: set[Call] = field(default_factory=set)

    def _rec(self, verb: str, group_version: str, plural: str) -> None:
        self.calls.add(Call(verb, group_version, plural))

    def version(self) -> dict[str, Any]:
        self._rec("get", "", "/version")
        return self.inner.version()

    def api_resources(self) -> list[ApiResource]:
        self._rec("get", "", "/apis")
        return self.inner.api_resources()

    def list(self, group_version: str, plural: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[Obj]:
        self._rec("list", group_version, plural)
        return self.inner.list(group_version, plural, namespace, label_selector)

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        self._rec("get", group_version, plural)
        return self.inner.get(group_version, plural, name, namespace)

    def create(self, obj: Obj) -> Obj:
        self._rec("create", obj.get("apiVersion", ""), _plural_of(self.inner, obj))
        return self.inner.create(obj)

    def apply(self, obj: Obj) -> Obj:
        plural = _plural_of(self.inner, obj)
        for verb in ("patch", "create"):  # server-side apply: patch, and create when the object is new
            self._rec(verb, obj.get("apiVersion", ""), plural)
        return self.inner.apply(obj)

    def delete(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> None:
        self._rec("delete", group_version, plural)
        self.inner.delete(group_version, plural, name, namespace)

    def delete_collection(self, group_version: str, plural: str, namespace: str | None,
                          label_selector: str) -> None:
        self._rec("deletecollection", group_version, plural)
        self.inner.delete_collection(group_version, plural, namespace, label_selector)

    def pod_logs(self, name: str, namespace: str) -> str:
        self._rec("get", "v1", "pods/log")
        return self.inner.pod_logs(name, namespace)

    def pod_proxy_get(self, name: str, namespace: str, port: int, path: str) -> str:
        self._rec("get", "v1", "pods/proxy")
        return self.inner.pod_proxy_get(name, namespace, port, path)

    def rbac_rules(self) -> dict[tuple[str, str], set[str]]:
        """{(api_group, resource): verbs} for resource calls (discovery excluded)."""
        rules: dict[tuple[str, str], set[str]] = {}
        for c in self.calls:
            if c.plural.startswith("/"):
                continue
            group, _ = split_group_version(c.group_version)
            rules.setdefault((group, c.plural), set()).add(c.verb)
        return rules


def record_calls(client: ClusterClient) -> RecordingCluster:
    return RecordingCluster(client)


def plural_for(resources: list[ApiResource], group_version: str, kind: str) -> str:
    """The plural the API server uses for a kind; a lower-case 's' guess when discovery does not say."""
    for r in resources:
        if r.group_version == group_version and r.kind == kind:
            return r.plural
    low = kind.lower()
    if low.endswith("y") and low[-2:-1] not in ("a", "e", "i", "o", "u"):
        return low[:-1] + "ies"
    return low + ("es" if low.endswith(("s", "x", "ch")) else "s")


def connect(kubeconfig: str | None = None, context: str | None = None,
            in_cluster: bool = False) -> ClusterClient:
    """The real API server: in-cluster config when asked, else a kubeconfig (and context)."""
    from kaic.cluster.kube import KubeCluster

    return KubeCluster.connect(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster)


def open_snapshot(path: str) -> ClusterClient:
    """A dump folder written by `kaic snapshot` (or by the kubectl script in docs/provision.md)."""
    from kaic.cluster.snapshot import SnapshotCluster

    return SnapshotCluster(path)


def _plural_of(client: ClusterClient, obj: Obj) -> str:
    return plural_for(client.api_resources(), obj.get("apiVersion", ""), obj.get("kind", ""))


__all__ = [
    "RUN_ID_LABEL", "ApiResource", "Call", "ClusterClient", "ClusterError", "DeadlineExceeded",
    "DeadlineExceededError", "Obj", "ReadOnlyClusterError", "RecordingCluster", "connect", "labelled",
    "open_snapshot", "plural_for", "record_calls", "run_selector", "split_group_version", "wait_until",
]
