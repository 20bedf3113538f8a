"""ACTIVE probes of the platform around the devices: gang admission through Kueue (batch/v1 Jobs), DRA
allocation from the driver's ResourceSlices and claim isolation (the operator probe: active_operator.py).

Pure object builders (`gang_job`, `resource_claim`, `claim_pod`, `cluster_queue`) and judges of what was
observed (`judge_gang`, `judge_allocation`), then small drivers that create the objects through a
ClusterClient, wait with the profile's deadlines, and always delete what they created (run-id label, or
the exact names for cluster-scoped objects).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kaic.catalog.evidence import UNVERIFIED
from kaic.cluster import ClusterClient, ClusterError, DeadlineExceededError, Obj, labelled, run_selector, wait_until
from kaic.results import Outcome, Status
from steps.provision.active import (
    DEVICE_LIST,
    MARKER,
    NO_OUTPUT,
    PROBE_LABEL,
    ActiveProbes,
    PodSettings,
    Report,
    parse_report,
    pending_reason,
    probe_pod,
)

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
DRA = "resource.k8s.io/v1"


@dataclass(frozen=True)
class Clock:
    poll_s: float = 1.0
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


# -- gang scheduling (Kueue, batch/v1 Job: all pods admitted together or none) ---------------------------
def gang_job(name: str, s: PodSettings, size: int, probe: str) -> Obj:
    """A Job of `size` pods, one accelerator each, in the profile's LocalQueue: Kueue admits it whole or not."""
    template = probe_pod(f"{name}-pod", s, 1, hold_s=s.timeout_s, probe=probe)
    meta = template["metadata"]
    job: Obj = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": s.namespace,
                     "labels": {PROBE_LABEL: probe, QUEUE_LABEL: s.gang_queue or ""}},
        "spec": {"parallelism": size, "completions": size, "suspend": True, "backoffLimit": 0,
                 "template": {"metadata": {"labels": meta["labels"]}, "spec": template["spec"]}},
    }
    return labelled(job, s.run_id)


@dataclass(frozen=True)
class GangSeen:
    size: int
    started: int  # pods seen Running or Succeeded
    admitted: bool  # the Job was unsuspended (Kueue admitted its Workload)
    seconds: float


def judge_gang(fits: GangSeen | None, over: GangSeen | None, why_not: str = "",
               held: str = "stayed suspended with no pod") -> tuple[Status, str]:
    """Positive: the gang that fits is admitted and all its pods start. Negative: the over-sized gang gets no
    pod started (and is not admitted) for the whole watch."""
    if fits is None or fits.started < fits.size:
        got = f"{fits.started}/{fits.size} pods started" if fits else "not observed"
        return Status.FAILED, f"a gang that fits was not admitted whole ({got}){': ' + why_not if why_not else ''}"
    if over is None:
        return Status.ERROR, "the over-sized gang was not observed"
    if over.started or over.admitted:
        return Status.FAILED, (f"an over-sized gang of {over.size} was admitted or started pods "
                               f"({over.started} started): not all-or-nothing")
    return Status.PASSED, (f"a gang of {fits.size} admitted whole, all pods started within {fits.seconds:.1f}s; "
                           f"a gang of {over.size} (over capacity) {held} for "
                           f"{over.seconds:.0f}s")


class KueueGang:
    """Gang admission through Kueue: batch/v1 Jobs, suspended until Kueue admits their Workload whole."""

    scheduler = "Kueue"
    held = "stayed suspended with no pod"  # what the over-sized gang must do, in the scheduler's terms

    def __init__(self, client: ClusterClient, s: PodSettings, clock: Clock | None = None) -> None:
        self.client, self.s, self.clock = client, s, clock or Clock()
        self.prefix = f"kaic-{run_suffix(s.run_id)}"

    # -- what differs between gang schedulers ---------------------------------------------------------
    def _missing(self) -> str | None:
        return None if self.s.gang_queue else "no Kueue LocalQueue in the profile (probes.gang_queue)"

    def _kinds(self) -> tuple[tuple[str, str], ...]:
        return (("batch/v1", "jobs"), ("v1", "pods"))  # a Job's pods may be orphaned: deleted too

    def _create(self, name: str, size: int, probe: str) -> None:
        self.client.create(gang_job(name, self.s, size, probe))

    def _admitted(self, name: str) -> bool:
        job = self.client.get("batch/v1", "jobs", name, self.s.namespace) or {}
        return (job.get("spec") or {}).get("suspend") is False

    def _where(self) -> str:
        return f"Kueue LocalQueue {self.s.namespace}/{self.s.gang_queue}"

    # -- the probe ---------------------------------------------------------------------------------------
    def _pods_started(self, probe: str) -> int:
        pods = self.client.list("v1", "pods", self.s.namespace, f"{run_selector(self.s.run_id)},{PROBE_LABEL}={probe}")
        return sum(1 for p in pods if ((p.get("status") or {}).get("phase") in ("Running", "Succeeded")))

    def _cleanup(self, probe: str) -> None:
        selector = f"{run_selector(self.s.run_id)},{PROBE_LABEL}={probe}"
        for group_version, plural in self._kinds():
            self.client.delete_collection(group_version, plural, self.s.namespace, selector)

        def gone() -> bool:
            return not any(self.client.list(gv, plural, self.s.namespace, selector) for gv, plural in self._kinds())

        wait_until(gone, self.s.timeout_s, f"gang probe objects ({selector}) to be deleted", self.clock.poll_s,
                   self.clock.now, self.clock.sleep)

    def _watch(self, name: str, probe: str, size: int, until_all: bool, seconds: float) -> GangSeen:
        start = self.clock.now()
        started, admitted = 0, False
        while True:
            started, admitted = self._pods_started(probe), self._admitted(name)
            if until_all and started >= size:
                break
            if not until_all and (started or admitted):
                break
            if self.clock.now() - start >= seconds:
                break
            self.clock.sleep(self.clock.poll_s)
        return GangSeen(size, started, admitted, self.clock.now() - start)

    def run(self, available: int, size: int = 2) -> Outcome:
        check = "provision.gang_admission"
        missing = self._missing()
        if missing:
            return Outcome.skipped(check, missing)
        if available < size:
            return Outcome.skipped(check, f"needs {size} allocatable {self.s.resource_name}, the cluster has "
                                   f"{available}")
        fits_name, over_name = f"{self.prefix}-gang-fits", f"{self.prefix}-gang-over"
        try:
            self._create(fits_name, size, "gang-fits")
            fits = self._watch(fits_name, "gang-fits", size, True, self.s.timeout_s)
        finally:
            self._cleanup("gang-fits")
        over_size = available + 1
        over = None
        if fits.started >= size:
            try:
                self._create(over_name, over_size, "gang-over")
                over = self._watch(over_name, "gang-over", over_size, False, self.s.gang_observe_s)
            finally:
                self._cleanup("gang-over")
        status, message = judge_gang(fits, over, held=self.held)
        evidence = (f"{self._where()}; {fits_name}: {fits.started}/{size} pods started, admitted={fits.admitted}"
                    + (f"; {over_name}: {over.started}/{over_size} started, admitted={over.admitted} after "
                       f"{over.seconds:.0f}s" if over else ""))
        return Outcome(check, status, f"{self.scheduler}: {message}", evidence=evidence)


def run_suffix(run_id: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]", "", run_id.lower())[-10:] or "run"


# -- DRA: a ResourceClaim allocated from the driver's slices -------------------------------------------
def resource_claim(name: str, s: PodSettings, device_class: str) -> Obj:
    claim: Obj = {"apiVersion": DRA, "kind": "ResourceClaim",
                  "metadata": {"name": name, "namespace": s.namespace, "labels": {PROBE_LABEL: "dra"}},
                  "spec": {"devices": {"requests": [{"name": "accelerator", "exactly": {
                      "deviceClassName": device_class, "allocationMode": "ExactCount", "count": 1}}]}}}
    return labelled(claim, s.run_id)


def claim_pod(name: str, s: PodSettings, claim: str) -> Obj:
    """A probe pod whose only device comes from the ResourceClaim `claim` (no extended resource)."""
    pod = probe_pod(name, s, 0, hold_s=s.timeout_s, probe="dra")
    pod["spec"].pop("nodeSelector", None)  # the claim decides where it runs: on a node of the driver's pool
    pod["spec"]["resourceClaims"] = [{"name": "accelerator", "resourceClaimName": claim}]
    pod["spec"]["containers"][0]["resources"]["claims"] = [{"name": "accelerator"}]
    return pod


def allocated_devices(claim: Obj | None) -> list[tuple[str, str, str]]:
    """(driver, pool, device) of each allocated device."""
    results = ((((claim or {}).get("status") or {}).get("allocation") or {}).get("devices") or {}).get("results")
    return [(str(r.get("driver")), str(r.get("pool")), str(r.get("device"))) for r in results or []]


def judge_allocation(devices: list[tuple[str, str, str]], slices: list[Obj]) -> tuple[Status, str]:
    """Every allocated device is one a ResourceSlice of its driver and pool publishes."""
    if not devices:
        return Status.FAILED, "the ResourceClaim was not allocated a device"
    published = set()
    for sl in slices:
        spec = sl.get("spec") or {}
        pool = str((spec.get("pool") or {}).get("name"))
        published |= {(str(spec.get("driver")), pool, str(d.get("name"))) for d in spec.get("devices") or []}
    unknown = [d for d in devices if d not in published]
    if unknown:
        return Status.FAILED, f"allocated devices no ResourceSlice publishes: {unknown}"
    return Status.PASSED, "the ResourceClaim was allocated " + ", ".join(f"{d[0]}/{d[1]}/{d[2]}" for d in devices)


class DraAllocation:
    def __init__(self, client: ClusterClient, s: PodSettings, device_class: str, clock: Clock | None = None) -> None:
        self.client, self.s, self.device_class, self.clock = client, s, device_class, clock or Clock()
        self.prefix = f"kaic-{run_suffix(s.run_id)}"

    def _cleanup(self) -> None:
        selector = f"{run_selector(self.s.run_id)},{PROBE_LABEL}=dra"
        self.client.delete_collection("v1", "pods", self.s.namespace, selector)
        self.client.delete_collection(DRA, "resourceclaims", self.s.namespace, selector)

        def gone() -> bool:
            return not self.client.list("v1", "pods", self.s.namespace, selector) and \
                not self.client.list(DRA, "resourceclaims", self.s.namespace, selector)

        wait_until(gone, self.s.timeout_s, f"DRA probe objects ({selector}) to be deleted", self.clock.poll_s,
                   self.clock.now, self.clock.sleep)

    def run(self) -> Outcome:
        check = "provision.dra_allocation"
        claim, pod = f"{self.prefix}-claim", f"{self.prefix}-claim-pod"
        try:
            self.client.create(resource_claim(claim, self.s, self.device_class))
            self.client.create(claim_pod(pod, self.s, claim))
            try:
                got = wait_until(lambda: allocated_devices(self.client.get(DRA, "resourceclaims", claim,
                                                                           self.s.namespace)) or None,
                                 self.s.timeout_s, f"ResourceClaim {claim} to be allocated", self.clock.poll_s,
                                 self.clock.now, self.clock.sleep)
            except DeadlineExceededError as exc:
                got = []
                why = f"{exc}; pod {pod}: {pending_reason(self.client.get('v1', 'pods', pod, self.s.namespace))}"
            else:
                why = ""
            placed = str(((self.client.get("v1", "pods", pod, self.s.namespace) or {}).get("spec") or {})
                         .get("nodeName") or "")
            slices = self.client.list(DRA, "resourceslices")
        finally:
            self._cleanup()
        status, message = judge_allocation(got, slices)
        evidence = (f"ResourceClaim {self.s.namespace}/{claim} (DeviceClass {self.device_class}) for pod {pod}"
                    f"{' on node ' + placed if placed else ''}; {why or 'allocated ' + str(len(got)) + ' device(s)'}")
        return Outcome(check, status, message if not why else f"{message}: {why}", evidence=evidence)


# -- secure_accelerator_access through DRA (the shape of upstream's TestSecureAcceleratorAccess) ---------
SHARED_DIR = "/kaic-probe"
SIDECAR = "SIDECAR "


def isolation_pod(name: str, s: PodSettings, claim: str | None, node: str | None = None) -> Obj:
    """With `claim`: a claimed `probe` container and an unclaimed `sidecar` sharing an emptyDir; the sidecar
    writes what it sees there, and the probe prints its own devices, then the sidecar's as `SIDECAR ...` lines,
    then the marker, so one log holds both. Without: a single container with no claim (pinned to `node`)."""
    hold = int(s.timeout_s)
    pod = probe_pod(name, s, 0, hold_s=hold, probe="dra-iso")
    spec = pod["spec"]
    spec.pop("nodeSelector", None)
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    if claim is None:
        return pod
    main = spec["containers"][0]
    sidecar = {**main, "name": "sidecar", "resources": {k: dict(v) for k, v in main["resources"].items()},
               "command": ["sh", "-c", f"({DEVICE_LIST}) > {SHARED_DIR}/devices; touch {SHARED_DIR}/done; "
                                       f"sleep {hold}"],
               "volumeMounts": [{"name": "probe", "mountPath": SHARED_DIR}]}
    main["resources"]["claims"] = [{"name": "accelerator"}]
    main["volumeMounts"] = [{"name": "probe", "mountPath": SHARED_DIR}]
    main["command"] = ["sh", "-c", f"{DEVICE_LIST}; i=0; while [ ! -e {SHARED_DIR}/done ] && [ $i -lt 60 ]; do "
                                   f"sleep 1; i=$((i+1)); done; sed 's/^/{SIDECAR}/' {SHARED_DIR}/devices 2>/dev/null; "
                                   f"echo {MARKER}; sleep {hold}"]
    spec["containers"] = [main, sidecar]
    spec["volumes"] = [{"name": "probe", "emptyDir": {}}]
    spec["resourceClaims"] = [{"name": "accelerator", "resourceClaimName": claim}]
    return pod


def split_sidecar(report_text: str) -> tuple[Report, Report]:
    """(the claimed container's report, the sidecar's) from one log."""
    own = [ln for ln in report_text.splitlines() if not ln.startswith(SIDECAR)]
    side = [ln[len(SIDECAR):] for ln in report_text.splitlines() if ln.startswith(SIDECAR)]
    return parse_report("\n".join(own)), parse_report("\n".join(side))


def judge_isolation(a: Report, a_sidecar: Report, b: Report, unclaimed: Report) -> tuple[Status, str]:
    """Upstream's assertions: each claimed pod sees a device, not the other's; the second container of a claimed
    pod and a pod without a claim on the same node see none."""
    if not a.ids or not b.ids:
        return Status.FAILED, "a claimed pod sees no device"
    if set(a.ids) & set(b.ids):
        return Status.FAILED, "two claimed pods see the same device"
    if a_sidecar.ids:
        return Status.FAILED, "a second container without the claim sees the claimed pod's devices"
    if unclaimed.ids:
        return Status.FAILED, "a pod without a claim, on the same node, sees devices"
    return Status.PASSED, ("each claimed pod sees only its own device; the second container and an unclaimed pod "
                           "on the same node see none")


class DraIsolation:
    def __init__(self, client: ClusterClient, s: PodSettings, device_class: str, clock: Clock | None = None) -> None:
        self.client, self.s, self.device_class, self.clock = client, s, device_class, clock or Clock()
        self.prefix = f"kaic-{run_suffix(s.run_id)}"
        self.pods = ActiveProbes(client, s, self.clock.poll_s, self.clock.now, self.clock.sleep)

    def _cleanup(self) -> None:
        selector = run_selector(self.s.run_id)
        for gv, plural in (("v1", "pods"), (DRA, "resourceclaims")):
            self.client.delete_collection(gv, plural, self.s.namespace, f"{selector},{PROBE_LABEL}=dra-iso")

        def gone() -> bool:
            return not any(self.client.list(gv, plural, self.s.namespace, f"{selector},{PROBE_LABEL}=dra-iso")
                           for gv, plural in (("v1", "pods"), (DRA, "resourceclaims")))

        wait_until(gone, self.s.timeout_s, "DRA isolation probe objects to be deleted", self.clock.poll_s,
                   self.clock.now, self.clock.sleep)

    def run(self) -> Outcome:
        check = "provision.claim_isolation"
        p = self.prefix
        claims = {f"{p}-iso-a": f"{p}-iso-claim-a", f"{p}-iso-b": f"{p}-iso-claim-b"}
        try:
            for pod, claim in claims.items():
                c = resource_claim(claim, self.s, self.device_class)
                c["metadata"]["labels"][PROBE_LABEL] = "dra-iso"
                self.client.create(c)
                self.client.create(isolation_pod(pod, self.s, claim))
            try:
                self.pods.wait_started(list(claims))
            except DeadlineExceededError as exc:
                reasons = "; ".join(f"{n}: {pending_reason(self.client.get('v1', 'pods', n, self.s.namespace))}"
                                    for n in claims)
                return Outcome(check, Status.FAILED, f"the claimed pods did not start: {exc}; {reasons}")
            node = str(((self.client.get("v1", "pods", f"{p}-iso-a", self.s.namespace) or {}).get("spec") or {})
                       .get("nodeName") or "")
            self.client.create(isolation_pod(f"{p}-iso-none", self.s, None, node))
            self.pods.wait_started([f"{p}-iso-none"])
            allocated = {c: allocated_devices(self.client.get(DRA, "resourceclaims", c, self.s.namespace))
                         for c in claims.values()}
            texts = {n: self._log(n) for n in (*claims, f"{p}-iso-none")}
        finally:
            self._cleanup()
        alloc = "; ".join(f"{c} -> {', '.join('/'.join(d) for d in devs) or 'nothing'}"
                          for c, devs in allocated.items())
        if any(t is None for t in texts.values()):
            distinct = len({d for devs in allocated.values() for d in devs}) == 2
            return Outcome(check, Status.SKIPPED, f"{UNVERIFIED}two claims allocated "
                           f"{'distinct devices' if distinct else 'devices'} on node {node or '?'} ({alloc}); "
                           f"missing: {NO_OUTPUT}", evidence=alloc)
        a, a_side = split_sidecar(texts[f"{p}-iso-a"] or "")
        b, _ = split_sidecar(texts[f"{p}-iso-b"] or "")
        none, _ = split_sidecar(texts[f"{p}-iso-none"] or "")
        status, message = judge_isolation(a, a_side, b, none)
        evidence = (f"{alloc}; pod a saw {', '.join(a.ids) or 'nothing'} (its second container: "
                    f"{', '.join(a_side.ids) or 'nothing'}); pod b saw {', '.join(b.ids) or 'nothing'}; the unclaimed "
                    f"pod on {node} saw {', '.join(none.ids) or 'nothing'}")
        return Outcome(check, status, message, evidence=evidence)

    def _log(self, name: str) -> str | None:
        rep = self.pods.report(name)
        if rep is None:
            return None
        try:
            return self.client.pod_logs(name, self.s.namespace)
        except ClusterError:
            return None
