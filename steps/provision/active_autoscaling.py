"""ACTIVE probe of `cluster_autoscaling` (its test plan): N+1 accelerator pods on an N-node pool.

Each pod asks for a whole node's accelerators, so N of them fill the pool and the last can only run on a node
the autoscaler adds. Passed only when that was observed: a node new to the pool became allocatable, every pod
ran, and once the pods were deleted the pool shrank back to its starting nodes. The seconds from creating the
pods until the new node was allocatable are recorded (`node_time_to_allocatable_s`). Nothing else counts: an
autoscaler Deployment or a status ConfigMap is presence, not behaviour.

`pool_nodes` and `judge_autoscaling` are pure; `NodeAutoscaling` creates the pods through a ClusterClient,
watches with the profile's deadlines and always deletes its pods (run-id label).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from kaic.cluster import ClusterClient, Obj, condition_true, run_selector, wait_until
from kaic.results import Outcome, Status
from steps.provision.active import PROBE_LABEL, PodSettings, pending_reason, probe_pod
from steps.provision.active_platform import Clock, run_suffix

CHECK = "provision.node_autoscaling"
METRIC = "node_time_to_allocatable_s"
PROBE = "autoscale"


@dataclass(frozen=True)
class PoolNode:
    name: str
    allocatable: int  # accelerators


def pool_nodes(nodes: list[Obj], selector: Mapping[str, str], resource: str) -> list[PoolNode]:
    """The pool's Ready, schedulable nodes that advertise at least one allocatable `resource`."""
    out = []
    for node in nodes:
        meta, spec = node.get("metadata") or {}, node.get("spec") or {}
        labels = meta.get("labels") or {}
        if spec.get("unschedulable") or not condition_true(node, "Ready") or \
                any(labels.get(k) != v for k, v in selector.items()):
            continue
        try:
            count = int(((node.get("status") or {}).get("allocatable") or {}).get(resource, 0))
        except (TypeError, ValueError):
            continue
        if count > 0:
            out.append(PoolNode(str(meta.get("name")), count))
    return sorted(out, key=lambda n: n.name)


@dataclass(frozen=True)
class ScaleSeen:
    start: tuple[str, ...]  # the pool's nodes before the pods
    pods: int
    running: int  # pods seen Running or Succeeded by the scale-up deadline
    new_nodes: tuple[str, ...]  # nodes that joined the pool
    new_node_s: float | None  # seconds from creating the pods until the first new node was allocatable
    pending: str = ""  # why a pod was still pending at the scale-up deadline (the scheduler's words)
    shrunk_s: float | None = None  # seconds from deleting the pods until the pool was back to `start`
    left: tuple[str, ...] = ()  # new nodes still in the pool at the scale-down deadline
    up_timeout_s: float = 0.0
    down_timeout_s: float = 0.0


def judge_autoscaling(seen: ScaleSeen) -> tuple[Status, str]:
    """Grown (a new node, every pod running), then shrunk back: passed. Anything less: failed, saying what."""
    n = len(seen.start)
    if not seen.new_nodes:
        why = f"; a pod stayed pending: {seen.pending}" if seen.pending else ""
        return Status.FAILED, (f"the pool stayed at its {n} node(s) for {seen.up_timeout_s:.0f}s while {seen.pods} "
                               f"pods needed {n + 1}: no node was added{why}")
    if seen.running < seen.pods:
        why = f" ({seen.pending})" if seen.pending else ""
        return Status.FAILED, (f"node(s) {', '.join(seen.new_nodes)} joined the pool, but only {seen.running}/"
                               f"{seen.pods} pods ran within {seen.up_timeout_s:.0f}s{why}")
    grew = (f"the pool grew from {n} to {n + len(seen.new_nodes)} node(s), the first new one allocatable after "
            f"{seen.new_node_s:.1f}s, and all {seen.pods} pods ran")
    if seen.shrunk_s is None:
        return Status.FAILED, (f"{grew}, but {', '.join(seen.left)} still in the pool {seen.down_timeout_s:.0f}s "
                               "after the pods were deleted: it did not shrink back")
    return Status.PASSED, f"{grew}; after the pods were deleted it shrank back to {n} in {seen.shrunk_s:.1f}s"


class NodeAutoscaling:
    """Runs the probe; its pods are deleted on the way out, whatever happens."""

    def __init__(self, client: ClusterClient, s: PodSettings, pool: Mapping[str, str], up_timeout_s: float,
                 down_timeout_s: float, clock: Clock | None = None) -> None:
        self.client, self.s, self.pool, self.clock = client, s, dict(pool), clock or Clock()
        self.up_timeout_s, self.down_timeout_s = up_timeout_s, down_timeout_s
        self.selector = f"{run_selector(s.run_id)},{PROBE_LABEL}={PROBE}"
        self.prefix = f"kaic-{run_suffix(s.run_id)}-{PROBE}"

    def _pool(self) -> list[PoolNode]:
        return pool_nodes(self.client.list("v1", "nodes"), self.pool, self.s.resource_name)

    def _pods(self) -> list[Obj]:
        return self.client.list("v1", "pods", self.s.namespace, self.selector)

    def _delete_pods(self) -> None:
        self.client.delete_collection("v1", "pods", self.s.namespace, self.selector)
        wait_until(lambda: not self._pods(), self.s.timeout_s, f"autoscaling probe pods ({self.selector}) to be "
                   "deleted", self.clock.poll_s, self.clock.now, self.clock.sleep)

    def _grow(self, start: set[str], pods: int) -> ScaleSeen:
        began = self.clock.now()
        new: tuple[str, ...] = ()
        new_s: float | None = None
        running, pending = 0, ""
        while True:
            now = self.clock.now()
            new = tuple(n.name for n in self._pool() if n.name not in start)
            if new and new_s is None:
                new_s = now - began
            listed = self._pods()
            running = sum(1 for p in listed if (p.get("status") or {}).get("phase") in ("Running", "Succeeded"))
            waiting = [p for p in listed if (p.get("status") or {}).get("phase") in ("", "Pending", None)]
            pending = pending_reason(waiting[0]) if waiting else ""
            if (new and running >= pods) or now - began >= self.up_timeout_s:
                return ScaleSeen(tuple(sorted(start)), pods, running, new, new_s, pending,
                                 up_timeout_s=self.up_timeout_s, down_timeout_s=self.down_timeout_s)
            self.clock.sleep(self.clock.poll_s)

    def _shrink(self, seen: ScaleSeen) -> ScaleSeen:
        began = self.clock.now()
        while True:
            left = tuple(n.name for n in self._pool() if n.name in seen.new_nodes)
            elapsed = self.clock.now() - began
            if not left:
                return replace(seen, shrunk_s=elapsed, left=())
            if elapsed >= self.down_timeout_s:
                return replace(seen, left=left)
            self.clock.sleep(self.clock.poll_s)

    def run(self) -> Outcome:
        start = self._pool()
        if not start:
            return Outcome.skipped(CHECK, f"no Ready node in the pool {self.pool or '(any node)'} advertises "
                                   f"{self.s.resource_name}: the pods cannot be sized (scale from zero is not probed)")
        per_node = min(n.allocatable for n in start)
        pods = len(start) + 1
        try:
            for i in range(pods):
                self.client.create(probe_pod(f"{self.prefix}-{i}", self._pool_settings(), per_node,
                                             hold_s=self.up_timeout_s + self.down_timeout_s, probe=PROBE))
            seen = self._grow({n.name for n in start}, pods)
        finally:
            self._delete_pods()
        if seen.new_nodes and seen.running >= pods:
            seen = self._shrink(seen)
        status, message = judge_autoscaling(seen)
        evidence = (f"pool {self.pool or '(any node)'}: {', '.join(seen.start)} at the start; {pods} pods of "
                    f"{per_node} {self.s.resource_name}; joined: {', '.join(seen.new_nodes) or 'none'}")
        if seen.new_node_s is None:
            return Outcome(CHECK, status, message, evidence=evidence)
        return Outcome(CHECK, status, message, metric=METRIC, value=round(seen.new_node_s, 1), unit="s",
                       evidence=evidence)

    def _pool_settings(self) -> PodSettings:
        """The pods go to the autoscaled pool: its selector, not only the accelerator's."""
        return replace(self.s, node_selector={**self.s.node_selector, **self.pool})
