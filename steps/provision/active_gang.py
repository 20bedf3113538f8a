"""Gang scheduling through whichever gang scheduler the cluster runs: Kueue (KueueGang, batch/v1 Jobs), or a
PodGroup scheduler, Volcano or NVIDIA KAI (PodGroupGang: a PodGroup with `minMember` and bare pods that name
it and the scheduler).

The probe is the same for all three (KueueGang.run): a gang of 2 that fits must start whole, then a gang of
allocatable+1 must get no pod started for `probes.gang_observe_s`. `choose` picks the scheduler from the
profile (`probes.gang_scheduler`), or with `auto` from what the API server serves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kaic.cluster import ApiResource, ClusterClient, Obj, labelled
from steps.provision.active import PROBE_LABEL, PodSettings, probe_pod
from steps.provision.active_platform import Clock, KueueGang


@dataclass(frozen=True)
class PodGroupFlavor:
    """How one PodGroup scheduler is asked for a gang."""

    name: str
    scheduler_name: str  # the pods' spec.schedulerName
    group_version: str  # of its PodGroup kind (plural `podgroups`)
    pod_annotation: str  # the pod annotation naming its PodGroup
    queue_label: str | None  # a pod/PodGroup label naming the queue, where the scheduler wants one
    default_queue: str | None  # the queue when the profile names none (None: the profile must name one)


# Volcano: PodGroup scheduling.volcano.sh/v1beta1; pods join it by the `scheduling.k8s.io/group-name`
# annotation; every cluster has the `default` queue.
VOLCANO = PodGroupFlavor("Volcano", "volcano", "scheduling.volcano.sh/v1beta1", "scheduling.k8s.io/group-name",
                         None, "default")
# KAI Scheduler: PodGroup scheduling.run.ai/v2alpha2; pods join it by the `pod-group-name` annotation (the
# pod-grouper then leaves them alone) and carry the queue label; queues are the operator's to create.
KAI = PodGroupFlavor("KAI", "kai-scheduler", "scheduling.run.ai/v2alpha2", "pod-group-name", "kai.scheduler/queue",
                     None)
FLAVORS = {"volcano": VOLCANO, "kai": KAI}


def pod_group(name: str, s: PodSettings, size: int, probe: str, flavor: PodGroupFlavor) -> Obj:
    """The PodGroup of a gang: `size` members, all or none."""
    queue = s.gang_queue or flavor.default_queue or ""
    labels = {PROBE_LABEL: probe, **({flavor.queue_label: queue} if flavor.queue_label else {})}
    group: Obj = {"apiVersion": flavor.group_version, "kind": "PodGroup",
                  "metadata": {"name": name, "namespace": s.namespace, "labels": labels},
                  "spec": {"minMember": size, "queue": queue}}
    return labelled(group, s.run_id)


def member_pods(name: str, s: PodSettings, size: int, probe: str, flavor: PodGroupFlavor) -> list[Obj]:
    """The gang's `size` pods, one accelerator each, held by the PodGroup scheduler until all fit."""
    pods = []
    for i in range(size):
        pod = probe_pod(f"{name}-{i}", s, 1, hold_s=s.timeout_s, probe=probe)
        pod["spec"]["schedulerName"] = flavor.scheduler_name
        pod["metadata"]["annotations"] = {flavor.pod_annotation: name}
        if flavor.queue_label:
            pod["metadata"]["labels"][flavor.queue_label] = s.gang_queue or flavor.default_queue or ""
        pods.append(pod)
    return pods


class PodGroupGang(KueueGang):
    """The gang probe through a PodGroup scheduler (Volcano, KAI)."""

    held = "had no pod started"

    def __init__(self, client: ClusterClient, s: PodSettings, flavor: PodGroupFlavor,
                 clock: Clock | None = None) -> None:
        super().__init__(client, s, clock)
        self.flavor, self.scheduler = flavor, flavor.name

    def _missing(self) -> str | None:
        if self.s.gang_queue or self.flavor.default_queue:
            return None
        return f"no {self.flavor.name} queue in the profile (probes.gang_queue)"

    def _kinds(self) -> tuple[tuple[str, str], ...]:
        return (("v1", "pods"), (self.flavor.group_version, "podgroups"))

    def _create(self, name: str, size: int, probe: str) -> None:
        self.client.create(pod_group(name, self.s, size, probe, self.flavor))
        for pod in member_pods(name, self.s, size, probe, self.flavor):
            self.client.create(pod)

    def _admitted(self, name: str) -> bool:
        group = self.client.get(self.flavor.group_version, "podgroups", name, self.s.namespace) or {}
        return (group.get("status") or {}).get("phase") == "Running"

    def _where(self) -> str:
        queue = self.s.gang_queue or self.flavor.default_queue
        return f"{self.flavor.name} PodGroups ({self.flavor.group_version}) in queue {queue}"


# What each scheduler's API looks like in discovery, in the order `auto` prefers them.
_SERVED = (("kueue", "kueue.x-k8s.io", "localqueues"), ("volcano", "scheduling.volcano.sh", "podgroups"),
           ("kai", "scheduling.run.ai", "podgroups"))


def installed(resources: Iterable[ApiResource]) -> list[str]:
    """The gang schedulers whose API the cluster serves, in `auto`'s order of preference."""
    served = {(r.group, r.plural) for r in resources}
    return [name for name, group, plural in _SERVED if (group, plural) in served]


def choose(client: ClusterClient, s: PodSettings, choice: str, clock: Clock | None = None) -> KueueGang | str:
    """The gang probe for the profile's `probes.gang_scheduler`, or why there is none (a failed row: absent)."""
    served = installed(client.api_resources())
    if choice == "auto":
        if not served:
            return "no gang scheduler API is served (Kueue localqueues, Volcano or KAI podgroups)"
        choice = served[0]
    elif choice not in served:
        return f"probes.gang_scheduler is {choice}, but the cluster does not serve its API"
    if choice == "kueue":
        return KueueGang(client, s, clock)
    return PodGroupGang(client, s, FLAVORS[choice], clock)
